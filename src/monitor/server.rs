//! The optional HTTP listener (`[http] listen`): `GET /metrics` in the
//! Prometheus text format and `GET /healthz`, served by axum on the
//! service's own runtime. It runs for the life of the service, across
//! reloads, and stops with it.

use std::net::SocketAddr;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

/// Binds the listener; a failure names the address and the config key.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ([http] listen): {e}"))
}

/// Serves /metrics and /healthz on `listener` until `stop` completes.
pub async fn serve(listener: TcpListener, stop: impl Future<Output = ()> + Send + 'static) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz));
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::error!("the metrics and health listener stopped: {e}");
    }
}

async fn metrics() -> Response {
    let text = super::metrics().encode(super::liveness());
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}

/// 200 when every worker is idle or progressing; 503 naming each stalled
/// worker, how long it has gone without progress and how long it may.
async fn healthz() -> Response {
    let (status, body) = health_report(&super::liveness().stalls());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn health_report(stalls: &[super::Stall]) -> (StatusCode, String) {
    if stalls.is_empty() {
        return (StatusCode::OK, r#"{"status":"ok"}"#.to_string());
    }
    let reason = super::liveness::describe(stalls);
    let body = serde_json::json!({ "status": "stalled", "reason": reason, "stalled": stalls });
    (StatusCode::SERVICE_UNAVAILABLE, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_a_503_with_a_short_json_reason() {
        assert_eq!(health_report(&[]).0, StatusCode::OK);
        let stall = super::super::Stall {
            worker: "store",
            no_progress_for_s: 12.5,
            expected_within_s: 2.0,
        };
        let (status, body) = health_report(&[stall]);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["stalled"][0]["worker"], "store");
        assert_eq!(json["stalled"][0]["no_progress_for_s"], 12.5);
        assert!(
            json["reason"].as_str().unwrap().contains("store worker"),
            "{body}"
        );
    }
}
