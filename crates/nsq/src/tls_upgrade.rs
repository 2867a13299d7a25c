//! TLS as nsqd offers it: a connection starts in plain text and IDENTIFY with `tls_v1: true`
//! upgrades it in place. The server sends the IDENTIFY response in plain text, then runs a
//! TLS handshake (rustls) over the same TCP stream, and everything after (the `OK` that ends
//! the upgrade, compression if negotiated, every later frame) goes over TLS.
//!
//! `NsqStream` is the connection's byte stream in either state. Bytes the client sent behind
//! IDENTIFY before the server switched (its ClientHello, or garbage) were already read into
//! the connection's buffers; `Prefixed` hands them to the handshake first.

use bytes::{Buf, Bytes};
use sluice_tls::{ServerTls, TlsStream};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// nsqd gives the handshake five seconds (`tlsConn.SetDeadline` in `UpgradeTLS`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS side of an NSQ listener.
#[derive(Clone)]
pub struct NsqTls {
    /// Certificates (reloaded on SIGHUP for new handshakes).
    pub server: Arc<ServerTls>,
    /// nsqd's `--tls-required`: every command but IDENTIFY needs TLS first.
    pub required: bool,
}

impl std::fmt::Debug for NsqTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NsqTls").field("cert", &self.server.files().cert).field("required", &self.required).finish()
    }
}

/// A client connection, in plain text or upgraded to TLS.
pub enum NsqStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<Prefixed>>),
    /// Between taking the plain stream and the end of the handshake; a failed handshake
    /// leaves it here and the connection closes.
    Closed,
}

impl NsqStream {
    /// Replaces a plain stream by a TLS one; `early` is what the client already sent behind
    /// IDENTIFY. A failed or slow handshake is an error for this connection only.
    pub async fn upgrade(&mut self, tls: &NsqTls, early: Bytes) -> io::Result<()> {
        let NsqStream::Plain(tcp) = std::mem::replace(self, NsqStream::Closed) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "connection is not plain text"));
        };
        let accept = tls.server.acceptor().accept(Prefixed { early, inner: tcp });
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        *self = NsqStream::Tls(Box::new(stream));
        Ok(())
    }

    /// The negotiated version and cipher suite, as nsqd's `/stats` names them (`TLS1.3`).
    pub fn tls_details(&self) -> Option<(String, String)> {
        let NsqStream::Tls(stream) = self else { return None };
        let session = stream.get_ref().1;
        let version = match session.protocol_version()? {
            sluice_tls::rustls::ProtocolVersion::TLSv1_2 => "TLS1.2".to_string(),
            sluice_tls::rustls::ProtocolVersion::TLSv1_3 => "TLS1.3".to_string(),
            other => format!("Unknown {}", u16::from(other)),
        };
        let suite = session.negotiated_cipher_suite()?.suite();
        let suite = suite.as_str().map_or_else(|| format!("Unknown {}", u16::from(suite)), str::to_string);
        Some((version, suite))
    }

    /// The client certificate's DER bytes, when the client showed one.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        match self {
            NsqStream::Tls(stream) => stream.get_ref().1.peer_certificates()?.first().map(|c| c.as_ref()),
            _ => None,
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed after a failed TLS upgrade")
}

impl AsyncRead for NsqStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NsqStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NsqStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            NsqStream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for NsqStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NsqStream::Plain(s) => Pin::new(s).poll_write(cx, data),
            NsqStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            NsqStream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NsqStream::Plain(s) => Pin::new(s).poll_flush(cx),
            NsqStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            NsqStream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NsqStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NsqStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            NsqStream::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// A TCP stream that first yields bytes already read from it.
pub struct Prefixed {
    early: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.early.has_remaining() {
            let n = this.early.len().min(buf.remaining());
            buf.put_slice(&this.early[..n]);
            this.early.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
