//! The accepted connections the gRPC server gets: only those that send the HTTP/2 preface
//! within `handshake_timeout_ms`. A client that connects and sends nothing (or a partial
//! preface, then nothing) is closed with a log line instead of holding a socket forever —
//! HTTP/2 keepalive only starts once a connection is up.
//!
//! Protocol: each accepted socket gets `TCP_NODELAY` and its own task, which peeks (without
//! consuming) until the 24 preface bytes are there, then hands the socket to the server; on
//! timeout or EOF the socket is dropped. Accepting never waits for a slow client.
//!
//! With TLS ([`incoming_tls`]) the same bound applies to the TLS handshake instead (the
//! preface is inside the encrypted stream); a failed handshake (a client that does not
//! trust the certificate, or presents none when mTLS asks for one) is logged and dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Between two peeks at a preface that has partly arrived.
const PEEK_AGAIN: Duration = Duration::from_millis(5);

/// The connections of `listener` that sent their preface in time, until `stop`.
pub fn incoming(
    listener: TcpListener,
    timeout: Duration,
    stop: CancellationToken,
) -> ReceiverStream<std::io::Result<TcpStream>> {
    accept_each(listener, timeout, stop, |socket, _peer| async move { preface(&socket).await.then_some(socket) })
}

/// The connections of `listener` that finished a TLS handshake in time, with the
/// certificates `tls` holds when each arrives, until `stop`.
pub fn incoming_tls(
    listener: TcpListener,
    timeout: Duration,
    stop: CancellationToken,
    tls: Arc<crate::tls::Reloadable>,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    accept_each(listener, timeout, stop, move |socket, peer| {
        let acceptor = tls.acceptor();
        async move {
            match acceptor.accept(socket).await {
                Ok(stream) => Some(stream),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "TLS handshake failed; connection closed");
                    None
                }
            }
        }
    })
}

/// Accepts on `listener`, runs `handshake` on each socket in its own task within `timeout`,
/// and yields what it gives back.
fn accept_each<IO, F, Fut>(
    listener: TcpListener,
    timeout: Duration,
    stop: CancellationToken,
    handshake: F,
) -> ReceiverStream<std::io::Result<IO>>
where
    IO: Send + 'static,
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = Option<IO>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (socket, peer) = tokio::select! {
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // e.g. out of file descriptors: say so, back off, keep serving
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.cancelled() => return,
                _ = tx.closed() => return,
            };
            let _ = socket.set_nodelay(true);
            let tx = tx.clone();
            let shaking = handshake(socket, peer);
            tokio::spawn(async move {
                match tokio::time::timeout(timeout, shaking).await {
                    Ok(Some(io)) => {
                        let _ = tx.send(Ok(io)).await;
                    }
                    Ok(None) => tracing::debug!(%peer, "connection closed before its handshake"),
                    Err(_) => tracing::warn!(
                        %peer,
                        timeout_ms = timeout.as_millis() as u64,
                        "closed a connection that did not finish its handshake in time (limits.handshake_timeout_ms)"
                    ),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Waits until the preface's bytes have arrived (true) or the peer closed (false). Bytes
/// that are not the preface are left for the server to refuse.
async fn preface(socket: &TcpStream) -> bool {
    let mut buf = [0u8; PREFACE.len()];
    loop {
        match socket.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n == buf.len() || buf[..n] != PREFACE[..n] => return true,
            Ok(_) => tokio::time::sleep(PEEK_AGAIN).await,
        }
    }
}
