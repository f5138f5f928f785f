//! The reference server: a plain axum handler that reads the body and answers 200, on its own
//! tokio runtime (as the gateway has its own process), listening on 127.0.0.1:0.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::oneshot;

/// A running baseline server; stopped when dropped.
pub(crate) struct Baseline {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Baseline {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the baseline server with `threads` runtime worker threads.
pub(crate) fn start(threads: usize) -> anyhow::Result<Baseline> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("baseline")
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = Router::new().route(
        "/webhooks/{channel_id}",
        post(|_body: Bytes| async { StatusCode::OK }),
    );
    let thread = std::thread::Builder::new()
        .name("baseline-server".into())
        .spawn(move || {
            runtime.block_on(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        })?;
    Ok(Baseline {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}
