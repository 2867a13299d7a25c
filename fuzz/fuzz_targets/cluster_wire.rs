//! Arbitrary bytes from a peer on the node-to-node connection: the frame decoder must cut
//! them into frames or refuse them (never panic, never allocate past the frame maximum), and
//! every frame body must decode into a request or reply, or be refused. The same bytes as a
//! metadata-group entry (a one-record v2 batch holding a command) must decode or be refused.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_cluster::meta::MetaCommand;
use sluice_cluster::transport::frame::{self, FrameKind};
use sluice_cluster::transport::message;
use sluice_cluster::transport::{Reply, Rpc};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = frame::decode(&mut buf) {
        match frame.kind {
            FrameKind::Request => {
                let _ = message::decode::<Rpc>(&frame.body);
            }
            FrameKind::Reply => {
                let _ = message::decode::<Reply>(&frame.body);
            }
        }
    }
    let _ = message::decode::<Rpc>(data);
    let _ = MetaCommand::decode(data);
});
