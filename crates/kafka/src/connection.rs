//! One Kafka connection. Requests are read and dispatched in order; work that waits
//! (an fsync for acks=all, a long-poll fetch) runs in its own task, and a writer sends
//! the responses strictly in request order. So a producer's pipelined requests are
//! appended in order yet share group-commit fsyncs.
//!
//! Bounds: at most `inflight_requests_max` replies and `inflight_bytes_max` request bytes
//! (a Fetch counts its largest reply too) wait for the writer; a client that stops reading stalls the writer, which gives up after
//! `write_timeout` without progress; a client silent for `idle_timeout` is closed.
//! Broker-wide, a request's bytes are taken from `Context::queued_request_bytes` (Kafka's
//! `queued.max.request.bytes`) after its length prefix is read and before its buffer is
//! allocated, and given back when its reply is written: a connection waits for budget, so
//! N connections sending maximal frames hold at most the budget, not N frames.

use crate::codec::{read_length, read_payload, FrameError};
use crate::dispatch::{dispatch, DispatchError, Reply, RequestTimer};
use crate::quota::request_time::{request_api, Pending};
use crate::server::Context;
use crate::session::Session;
use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use sluice_broker::clients::Client;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error("write failed: {0}")]
    Write(std::io::Error),
    #[error("client read nothing for {0:?} while replies waited (a client that never reads)")]
    WriteStalled(Duration),
    #[error("idle for {0:?} (connections.max.idle.ms)")]
    Idle(Duration),
}

/// Serves one connection: `reader` and `writer` are its two halves (TCP, or TLS once the
/// handshake is done).
pub async fn run<R, W>(
    context: Arc<Context>,
    mut reader: R,
    mut writer: W,
    mut shutdown: watch::Receiver<bool>,
    client: Arc<Client>,
    mut session: Session,
) -> Result<(), ConnectionError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let (replies, mut pending) = mpsc::channel::<(Reply, [OwnedSemaphorePermit; 2], RequestTimer, Option<Pending>)>(
        context.config.inflight_requests_max,
    );
    let timing = Arc::clone(&context);
    let writer_client = Arc::clone(&client);
    // Request bytes whose replies are not written yet; a permit per request is released
    // when its reply has been written.
    let inflight_bytes_max = context.config.inflight_bytes_max.clamp(1, u32::MAX as usize);
    let inflight_bytes = Arc::new(Semaphore::new(inflight_bytes_max));
    let write_timeout = context.config.write_timeout;
    let write_loop = async move {
        while let Some((reply, _request_bytes, timer, request_time)) = pending.recv().await {
            let frame: Option<Bytes> = match reply {
                Reply::Now(frame) => Some(frame),
                Reply::Later(task, _) => match task.await {
                    Ok(Ok(frame)) => frame,
                    Ok(Err(e)) => return Err(ConnectionError::Dispatch(e)),
                    Err(e) => return Err(ConnectionError::Dispatch(DispatchError::Task(e.to_string()))),
                },
                Reply::Nothing => None,
            };
            let frame = match request_time {
                Some(request_time) => request_time.settle(frame),
                None => frame,
            };
            if let Some(frame) = frame {
                write_frame(&mut writer, &frame, write_timeout).await?;
            }
            timer.finish(&timing.requests, &writer_client);
        }
        let _ = writer.shutdown().await;
        Ok(())
    };
    let read_loop = async move {
        // A throttled client's next request waits (KIP-219: Kafka mutes the channel).
        let mute = Arc::clone(&session.mute);
        loop {
            tokio::select! {
                _ = mute.wait() => {}
                _ = shutdown.changed() => return Ok(()),
            }
            let idle_timeout = context.config.idle_timeout;
            let len = tokio::select! {
                len = tokio::time::timeout(idle_timeout, read_length(&mut reader, context.config.request_bytes_max)) => {
                    len.map_err(|_| ConnectionError::Idle(idle_timeout))??
                }
                _ = shutdown.changed() => None,
                // The writer gave up (a stalled client): stop reading too.
                _ = replies.closed() => None,
            };
            let Some(len) = len else { return Ok::<(), ConnectionError>(()) };
            // Settings keep `request_bytes_max` within the budget, so this always fits.
            let queued = len.clamp(1, context.queued_request_bytes_max) as u32;
            let queued = tokio::select! {
                permit = Arc::clone(&context.queued_request_bytes).acquire_many_owned(queued) => match permit {
                    Ok(permit) => permit,
                    Err(_) => return Ok(()),
                },
                _ = shutdown.changed() => return Ok(()),
                _ = replies.closed() => return Ok(()),
            };
            let frame = tokio::select! {
                frame = tokio::time::timeout(idle_timeout, read_payload(&mut reader, len)) => {
                    frame.map_err(|_| ConnectionError::Idle(idle_timeout))??
                }
                _ = shutdown.changed() => return Ok(()),
                _ = replies.closed() => return Ok(()),
            };
            let wanted = (frame.len() + reply_reserve(&frame)).clamp(1, inflight_bytes_max) as u32;
            let request_bytes = tokio::select! {
                permit = Arc::clone(&inflight_bytes).acquire_many_owned(wanted) => match permit {
                    Ok(permit) => permit,
                    Err(_) => return Ok(()),
                },
                _ = replies.closed() => return Ok(()),
            };
            let timer = RequestTimer::start(&frame);
            let request = (!session.expects_raw_token()).then(|| request_api(&frame)).flatten();
            let started = Instant::now();
            let reply = dispatch(&context, &client, &mut session, frame)?;
            let request_time = request_time(&context, &session, &client, request, started.elapsed(), &reply);
            if replies.send((reply, [request_bytes, queued], timer, request_time)).await.is_err() {
                return Ok(());
            }
            if session.close_after_reply {
                // The writer sends what is queued, this answer last, then closes.
                return Ok(());
            }
        }
    };
    let (read, write) = tokio::join!(read_loop, write_loop);
    read.and(write)
}

/// The request-time quota's account of one request (KIP-124), if the connection has one.
fn request_time(
    context: &Context,
    session: &Session,
    client: &Client,
    request: Option<(ApiKey, i16)>,
    handled: Duration,
    reply: &Reply,
) -> Option<Pending> {
    let quotas = &context.security.quotas;
    if quotas.store.is_empty() || request.is_none() {
        return None;
    }
    let charge = quotas.request_charge(&session.principal.name, &client.details().client_id, &session.mute);
    let busy = match reply {
        Reply::Later(_, busy) => Some(Arc::clone(busy)),
        _ => None,
    };
    Pending::start(charge, request, handled, busy)
}

/// Bytes a request's reply may hold beyond its own size, charged to the in-flight budget
/// with it: a Fetch reply can be up to `fetch::RESPONSE_BYTES_MAX`, so a client that
/// pipelines fetches and never reads holds at most the budget in replies, not 32 of them.
fn reply_reserve(frame: &[u8]) -> usize {
    match frame {
        [hi, lo, ..] if i16::from_be_bytes([*hi, *lo]) == ApiKey::Fetch as i16 => crate::api::fetch::RESPONSE_BYTES_MAX,
        _ => 0,
    }
}

/// Writes a whole frame, failing when the client accepts no byte for `stall_max`: a client
/// that never reads cannot hold the connection and its queued replies forever.
async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &[u8],
    stall_max: Duration,
) -> Result<(), ConnectionError> {
    let mut rest = frame;
    while !rest.is_empty() {
        match tokio::time::timeout(stall_max, writer.write(rest)).await {
            Ok(Ok(0)) => return Err(ConnectionError::Write(std::io::ErrorKind::WriteZero.into())),
            Ok(Ok(written)) => rest = &rest[written..],
            Ok(Err(e)) => return Err(ConnectionError::Write(e)),
            Err(_) => return Err(ConnectionError::WriteStalled(stall_max)),
        }
    }
    Ok(())
}
