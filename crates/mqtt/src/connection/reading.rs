//! The connection's reads. An idle connection holds no read buffer: the transport is read
//! into a scratch buffer of the thread polling it, and only the bytes read are copied into
//! the connection's buffer, which the read loop frees once every packet in it was taken. A
//! connection's buffer so grows past what one read brings only while a large packet comes
//! in (bounded by the packet limit, checked on its fixed header before its body is waited
//! for).

use bytes::BytesMut;
use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Bytes asked of the transport per read: a busy publisher's pipelined packets fill it, so
/// one read (one system call) takes many of them.
pub(super) const READ_CHUNK_BYTES: usize = 64 * 1024;

thread_local! {
    /// The scratch buffer of the thread, shared by every connection it polls: a read fills
    /// it and it is emptied into the connection's buffer within the same poll.
    static SCRATCH: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

/// Reads what the transport has (at most `READ_CHUNK_BYTES`) and appends it to `buf`.
/// Answers the bytes read, 0 once the client closed its side. Cancel-safe: a read either
/// completes within one poll or takes nothing.
pub(super) async fn read_some<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut BytesMut) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_some(Pin::new(&mut *reader), cx, buf)).await
}

fn poll_read_some<R: AsyncRead>(
    reader: Pin<&mut R>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    // Taken out for the poll, put back after: a poll nested in another (never, with the
    // transports served) would only allocate its own.
    let mut scratch = SCRATCH.take().unwrap_or_else(|| vec![0; READ_CHUNK_BYTES].into_boxed_slice());
    let mut read = ReadBuf::new(&mut scratch);
    let polled = reader.poll_read(cx, &mut read);
    let filled = read.filled().len();
    if let Poll::Ready(Ok(())) = polled {
        buf.extend_from_slice(&scratch[..filled]);
    }
    SCRATCH.set(Some(scratch));
    ready!(polled)?;
    Poll::Ready(Ok(filled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn appends_each_read_to_what_the_buffer_holds() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let mut buf = BytesMut::new();
        client.write_all(b"abc").await.unwrap();
        assert_eq!(read_some(&mut server, &mut buf).await.unwrap(), 3);
        client.write_all(b"de").await.unwrap();
        assert_eq!(read_some(&mut server, &mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..], b"abcde");
        drop(client);
        assert_eq!(read_some(&mut server, &mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_read_larger_than_the_scratch_comes_in_chunks() {
        let (mut client, mut server) = tokio::io::duplex(4 * READ_CHUNK_BYTES);
        let sent = vec![7u8; 3 * READ_CHUNK_BYTES];
        client.write_all(&sent).await.unwrap();
        let mut buf = BytesMut::new();
        while buf.len() < sent.len() {
            let n = read_some(&mut server, &mut buf).await.unwrap();
            assert!(n > 0 && n <= READ_CHUNK_BYTES);
        }
        assert_eq!(&buf[..], &sent[..]);
    }
}
