//! The accept loop: HTTP/1.1 connections served by hyper with a header-read timeout.
//!
//! Why not `axum::serve`: it has no header timeout, so a client that sends its request head one
//! byte at a time (slowloris) holds a connection and a task forever. The router's
//! `TimeoutLayer` only starts once the head is complete; it bounds the body. Together they bound
//! a whole request.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// Serves `router` on `listener` until the process stops; a client must send a request's head
/// within `header_timeout`.
pub(crate) async fn serve(listener: TcpListener, router: Router, header_timeout: Duration) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let router = router.clone();
                async move {
                    match router.oneshot(request).await {
                        Ok(response) => Ok::<_, Infallible>(response),
                        Err(never) => match never {},
                    }
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}
