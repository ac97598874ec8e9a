//! The accepted connections the gRPC server gets: only those that send the HTTP/2 preface
//! within `handshake_timeout_ms`. A client that connects and sends nothing (or a partial
//! preface, then nothing) is closed with a log line instead of holding a socket forever —
//! HTTP/2 keepalive only starts once a connection is up.
//!
//! Protocol: each accepted socket gets `TCP_NODELAY` and its own task, which peeks (without
//! consuming) until the 24 preface bytes are there, then hands the socket to the server; on
//! timeout or EOF the socket is dropped. Accepting never waits for a slow client.

use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
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
            tokio::spawn(async move {
                match tokio::time::timeout(timeout, preface(&socket)).await {
                    Ok(true) => {
                        let _ = tx.send(Ok(socket)).await;
                    }
                    Ok(false) => tracing::debug!(%peer, "connection closed before its HTTP/2 preface"),
                    Err(_) => tracing::warn!(
                        %peer,
                        timeout_ms = timeout.as_millis() as u64,
                        "closed a connection that sent no HTTP/2 preface in time (limits.handshake_timeout_ms)"
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
