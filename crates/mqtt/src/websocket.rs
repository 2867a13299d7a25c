//! MQTT over WebSocket (MQTT 5.0 and 3.1.1, §6): the HTTP upgrade at `/mqtt` (or `/`) with
//! the `mqtt` subprotocol, then a bridge between binary messages and the byte stream the TCP
//! connection code reads and writes. The protocol logic is `Conn`'s, unchanged: a message may
//! hold several packets or part of one, as TCP segments may.

use crate::connection::{Conn, Shared};
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use sluice_broker::clients::ClientGuard;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// The subprotocol MQTT over WebSocket must negotiate (§6.0): paho and mqtt.js insist on it.
const SUBPROTOCOL: &str = "mqtt";
/// Paths the upgrade is served at: `/mqtt` by convention (mosquitto, EMQX), `/` for clients
/// given a bare URL.
const PATHS: [&str; 2] = ["/mqtt", "/"];
/// Bytes buffered each way between the WebSocket and the connection: one read chunk's worth,
/// so a client that stops reading holds little and is cut off by the write timeout.
const BRIDGE_BYTES: usize = 64 * 1024;

/// Upgrades one accepted socket (TCP, or TLS for `wss://`) and serves MQTT over it until either side ends. A refused
/// upgrade (wrong path, no `mqtt` subprotocol, not HTTP, too slow) closes this socket only.
pub(crate) async fn serve<S>(
    socket: S,
    shared: &Shared,
    remote: SocketAddr,
    client: ClientGuard,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = ws_config(shared.config.packet_bytes_max);
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(socket, check_upgrade, Some(config));
    let ws = match tokio::time::timeout(shared.config.connect_timeout, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "mqtt websocket upgrade refused");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "mqtt websocket upgrade not finished in time");
            return;
        }
    };
    let (conn_side, bridge_side) = tokio::io::duplex(BRIDGE_BYTES);
    let conn = Conn::serve(tokio::io::split(conn_side), shared, remote, client, stop);
    tokio::join!(conn, bridge(ws, bridge_side, shared.config.write_timeout));
}

/// Messages and frames are bounded by the packet limit: a larger one could only carry a
/// packet the connection would refuse anyway.
fn ws_config(packet_bytes_max: usize) -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(packet_bytes_max)).max_frame_size(Some(packet_bytes_max))
}

/// The handshake's check: a known path and the `mqtt` subprotocol among those offered,
/// which the response then names.
// The signature is tungstenite's `Callback`, its error type an HTTP response.
#[allow(clippy::result_large_err)]
fn check_upgrade(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    if !PATHS.contains(&request.uri().path()) {
        return Err(refusal(StatusCode::NOT_FOUND, "MQTT over WebSocket is served at /mqtt"));
    }
    let offered = request.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL);
    let offers_mqtt = offered
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL);
    if !offers_mqtt {
        return Err(refusal(StatusCode::BAD_REQUEST, "the mqtt subprotocol is required"));
    }
    response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
    Ok(response)
}

fn refusal(status: StatusCode, message: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(message.to_string()));
    *response.status_mut() = status;
    response
}

/// Carries binary messages into the connection and its bytes back out as binary messages,
/// both ways at once, until one way ends; then closes the WebSocket with the reason, if any.
async fn bridge<S: AsyncRead + AsyncWrite + Unpin>(
    ws: WebSocketStream<S>,
    bridge_side: DuplexStream,
    write_timeout: Duration,
) {
    let (mut sink, mut stream) = ws.split();
    let (from_conn, to_conn) = tokio::io::split(bridge_side);
    let close = tokio::select! {
        close = inbound(&mut stream, to_conn) => close,
        close = outbound(&mut sink, from_conn, write_timeout) => close,
    };
    if let Some(frame) = close {
        let _ = tokio::time::timeout(write_timeout, sink.send(Message::Close(Some(frame)))).await;
    }
}

/// Client → connection. Returns the close frame to send, or none when the client is gone.
async fn inbound<S, W>(stream: &mut S, mut to_conn: W) -> Option<CloseFrame>
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
    W: AsyncWrite + Unpin,
{
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Binary(bytes)) => {
                // The connection has ended: it wrote its last bytes (the outbound side sends them).
                if to_conn.write_all(&bytes).await.is_err() {
                    return None;
                }
            }
            // §6.0: MQTT is carried in binary frames only; any other data frame closes.
            Ok(Message::Text(_)) => return Some(close(CloseCode::Unsupported, "MQTT needs binary frames")),
            Ok(Message::Close(_)) => return None,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Err(WsError::Capacity(_)) => return Some(close(CloseCode::Size, "message larger than the packet limit")),
            Err(_) => return None,
        }
    }
    None
}

/// Connection → client, one binary message per read. Ends when the connection closes its
/// side (a normal close follows) or a send blocks past `write_timeout` (a client that never
/// reads).
async fn outbound<K, R>(sink: &mut K, mut from_conn: R, write_timeout: Duration) -> Option<CloseFrame>
where
    K: futures_util::Sink<Message, Error = WsError> + Unpin,
    R: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(BRIDGE_BYTES);
    loop {
        buf.reserve(BRIDGE_BYTES);
        match from_conn.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Some(close(CloseCode::Normal, "")),
            Ok(_) => {}
        }
        let message = Message::Binary(buf.split().freeze());
        if !matches!(tokio::time::timeout(write_timeout, sink.send(message)).await, Ok(Ok(()))) {
            return None;
        }
    }
}

fn close(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame { code, reason: reason.into() }
}
