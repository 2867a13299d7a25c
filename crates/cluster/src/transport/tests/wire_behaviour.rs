//! The transport alone, without Raft: multiplexing, timeouts, dead connections, bad frames.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::harness::{bounded, TestNode};
use crate::transport::{ClientWriteReply, Transport, TransportError};
use crate::types::{Batches, GroupId};

/// A generous deadline for calls that should answer at once.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A node-level request reaches the handler and its answer (or refusal) comes back.
#[tokio::test]
async fn node_request_round_trip() {
    bounded(async {
        let server = TestNode::start(1).await;
        let transport = Transport::new(2);
        let reply = transport.node_request(&server.addr, b"ping".to_vec(), CALL_TIMEOUT).await.unwrap();
        assert_eq!(reply, b"echo:ping");
        let refused = transport.node_request(&server.addr, b"refuse".to_vec(), CALL_TIMEOUT).await;
        assert!(matches!(refused, Err(TransportError::Remote { message, .. }) if message == "refused"));
    })
    .await;
}

/// A write for a group the node does not run gets "no such group".
#[tokio::test]
async fn unknown_group_is_no_such_group() {
    bounded(async {
        let server = TestNode::start(1).await;
        let transport = Transport::new(2);
        let reply = transport
            .client_write(&server.addr, GroupId::Meta, Batches(bytes::Bytes::from_static(b"x")))
            .await
            .unwrap();
        assert_eq!(reply, ClientWriteReply::NoSuchGroup);
    })
    .await;
}

/// A slow request does not hold up a fast one on the same connection: replies come back out
/// of order, each to its own call.
#[tokio::test]
async fn slow_request_does_not_block_fast_one() {
    bounded(async {
        let server = TestNode::start(1).await;
        let transport = Transport::new(2);
        let slow = {
            let (transport, addr) = (transport.clone(), server.addr.clone());
            tokio::spawn(async move { transport.node_request(&addr, b"slow".to_vec(), CALL_TIMEOUT).await })
        };
        // Until the slow one is released, fast ones keep completing.
        for _ in 0..3 {
            let fast = transport.node_request(&server.addr, b"fast".to_vec(), CALL_TIMEOUT).await.unwrap();
            assert_eq!(fast, b"echo:fast");
        }
        assert!(!slow.is_finished());
        server.handler.release_slow.notify_one();
        assert_eq!(slow.await.unwrap().unwrap(), b"slow done");
        assert_eq!(transport.connections_opened(), 1);
    })
    .await;
}

/// A call with no answer fails at its deadline, and the connection stays usable.
#[tokio::test]
async fn unanswered_call_times_out() {
    bounded(async {
        let server = TestNode::start(1).await;
        let transport = Transport::new(2);
        let hung = transport.node_request(&server.addr, b"hang".to_vec(), Duration::from_millis(100)).await;
        assert!(matches!(hung, Err(TransportError::Timeout { .. })), "{hung:?}");
        let after = transport.node_request(&server.addr, b"ok".to_vec(), CALL_TIMEOUT).await.unwrap();
        assert_eq!(after, b"echo:ok");
        assert_eq!(transport.connections_opened(), 1);
    })
    .await;
}

/// When the peer's server goes away, calls waiting on the connection fail at once (not at
/// their deadline), later calls are refused as unreachable, and a new server at the same
/// address is dialled again.
#[tokio::test]
async fn dead_connection_fails_pending_calls_and_redials() {
    bounded(async {
        let server = TestNode::start(1).await;
        let transport = Transport::new(2);
        let pending = {
            let (transport, addr) = (transport.clone(), server.addr.clone());
            // Far longer than the test's bound: only the dead connection can end it in time.
            tokio::spawn(
                async move { transport.node_request(&addr, b"hang".to_vec(), Duration::from_secs(3600)).await },
            )
        };
        // Make sure the call is in flight before the server stops.
        transport.node_request(&server.addr, b"ok".to_vec(), CALL_TIMEOUT).await.unwrap();
        server.stop_server().await;
        let failed = pending.await.unwrap();
        assert!(matches!(failed, Err(TransportError::ConnectionLost { .. })), "{failed:?}");
        let refused = transport.node_request(&server.addr, b"ok".to_vec(), CALL_TIMEOUT).await;
        assert!(matches!(refused, Err(TransportError::Unreachable { .. })), "{refused:?}");

        // A node restarted on the same address is reached again once the backoff passes.
        let listener = tokio::net::TcpListener::bind(&server.addr).await.unwrap();
        let (_stop, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(crate::transport::serve(
            listener,
            server.handler.clone(),
            crate::transport::PeerSecurity::Plaintext,
            stop,
        ));
        let again = loop {
            match transport.node_request(&server.addr, b"back".to_vec(), CALL_TIMEOUT).await {
                Ok(reply) => break reply,
                Err(TransportError::Unreachable { .. }) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(other) => panic!("redial: {other:?}"),
            }
        };
        assert_eq!(again, b"echo:back");
        assert_eq!(transport.connections_opened(), 2);
    })
    .await;
}

/// Garbage on one connection closes that connection only; the server goes on serving others.
#[tokio::test]
async fn garbage_closes_only_its_connection() {
    bounded(async {
        let server = TestNode::start(1).await;
        let mut raw = TcpStream::connect(&server.addr).await.unwrap();
        // A length over the maximum, then a valid-length frame of an unknown kind.
        raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(CALL_TIMEOUT, raw.read_to_end(&mut rest)).await.unwrap();
        // The read ended (closed or reset) before the deadline, with no reply.
        drop(read);
        assert!(rest.is_empty(), "the server closed without answering");

        let mut raw = TcpStream::connect(&server.addr).await.unwrap();
        raw.write_all(&[0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xff, 0xff, 0xff]).await.unwrap();
        let read = tokio::time::timeout(CALL_TIMEOUT, raw.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty() && read.is_ok(), "a bad body closes the connection without a reply");

        let transport = Transport::new(2);
        let reply = transport.node_request(&server.addr, b"still here".to_vec(), CALL_TIMEOUT).await.unwrap();
        assert_eq!(reply, b"echo:still here");
    })
    .await;
}
