//! One Kafka connection. Requests are read and dispatched in order; work that waits
//! (an fsync for acks=all, a long-poll fetch) runs in its own task, and a writer sends
//! the responses strictly in request order. So a producer's pipelined requests are
//! appended in order yet share group-commit fsyncs.

use crate::codec::{read_frame, FrameError};
use crate::dispatch::{dispatch, DispatchError, Reply};
use crate::server::Context;
use bytes::Bytes;
use std::sync::Arc;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

#[derive(Debug, Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error("write failed: {0}")]
    Write(std::io::Error),
}

pub async fn run(
    context: Arc<Context>,
    stream: TcpStream,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let (mut reader, mut writer) = stream.into_split();
    let (replies, mut pending) = mpsc::channel::<Reply>(context.config.inflight_requests_max);
    let write_loop = async move {
        while let Some(reply) = pending.recv().await {
            let frame: Option<Bytes> = match reply {
                Reply::Now(frame) => Some(frame),
                Reply::Later(task) => match task.await {
                    Ok(Ok(frame)) => frame,
                    Ok(Err(e)) => return Err(ConnectionError::Dispatch(e)),
                    Err(e) => return Err(ConnectionError::Dispatch(DispatchError::Task(e.to_string()))),
                },
                Reply::Nothing => None,
            };
            if let Some(frame) = frame {
                writer.write_all(&frame).await.map_err(ConnectionError::Write)?;
            }
        }
        let _ = writer.shutdown().await;
        Ok(())
    };
    let read_loop = async move {
        loop {
            let frame = tokio::select! {
                frame = read_frame(&mut reader, context.config.request_bytes_max) => frame?,
                _ = shutdown.changed() => None,
            };
            let Some(frame) = frame else { return Ok::<(), ConnectionError>(()) };
            let reply = dispatch(&context, frame)?;
            if replies.send(reply).await.is_err() {
                return Ok(());
            }
        }
    };
    let (read, write) = tokio::join!(read_loop, write_loop);
    read.and(write)
}
