//! A loopback TCP proxy whose connections the harness can cut: the "network" between a
//! worker and its engine.
//!
//! Invariant: after [`Proxy::cut`] returns, every connection accepted before it is closed
//! on both sides (the worker sees its stream end, the engine sees its peer go); connections
//! accepted afterwards are piped as usual.
//!
//! Protocol: each accepted connection is paired with a fresh connection to the upstream
//! and the two are copied both ways until either side closes or the generation it was
//! accepted in is cut.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct Proxy {
    pub addr: SocketAddr,
    generation: Arc<parking_lot::Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let generation = Arc::new(parking_lot::Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let (gen2, stop2) = (generation.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stop2.cancelled() => return,
                };
                let Ok((mut down, _)) = accepted else { continue };
                let cut = gen2.lock().clone();
                tokio::spawn(async move {
                    let Ok(mut up) = TcpStream::connect(upstream).await else { return };
                    let _ = down.set_nodelay(true);
                    let _ = up.set_nodelay(true);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = cut.cancelled() => {}
                    }
                    // dropping both streams closes them
                });
            }
        });
        Ok(Self { addr, generation, stop })
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        let old = std::mem::replace(&mut *self.generation.lock(), CancellationToken::new());
        old.cancel();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.generation.lock().cancel();
    }
}
