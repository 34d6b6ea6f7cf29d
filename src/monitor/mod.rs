//! What the operator's tools see of a running service: Prometheus metrics,
//! worker liveness (shared by `GET /healthz` and the systemd watchdog), and
//! the optional HTTP listener serving both.
//!
//! The metrics and the liveness are one instance each per process, reached
//! through [`metrics()`] and [`liveness()`], the way `tracing` reaches its
//! subscriber: the events they count happen in the pipeline, the fetcher,
//! the deliverer and the store's thread, and a process runs one service.
//! Recording is a few atomics; with no listener configured nothing reads
//! them but the watchdog.

pub mod liveness;
pub mod metrics;
mod process;
pub mod server;

use std::sync::LazyLock;

pub use liveness::{Heartbeat, Liveness, Stall};
pub use metrics::Metrics;

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
static LIVENESS: Liveness = Liveness::new();

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The process's workers' liveness.
pub fn liveness() -> &'static Liveness {
    &LIVENESS
}
