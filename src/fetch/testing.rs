//! Test support: a real axum server on 127.0.0.1 with a random port, and a
//! `PollConfig` with short limits, shared by the fetch and article tests.

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use crate::config::{PollConfig, default_user_agent};

/// A running fixture server; it stops when the test's runtime ends.
pub(crate) struct TestServer {
    pub addr: SocketAddr,
}

impl TestServer {
    /// Serves `router` on 127.0.0.1:0.
    pub async fn start(router: axum::Router) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test port on 127.0.0.1");
        let addr = listener.local_addr().expect("test listener has an address");
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("test server runs");
        });
        TestServer { addr }
    }

    /// An absolute URL on this server.
    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).expect("test URL parses")
    }
}

/// Poll settings for tests: small cap, short timeout, few redirects.
pub(crate) fn poll_config() -> PollConfig {
    PollConfig {
        interval: Duration::from_secs(60),
        max_interval: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
        max_body_bytes: 1 << 20,
        max_redirects: 3,
        concurrency: 4,
        article_concurrency: 4,
        user_agent: default_user_agent(),
        backfill: Duration::from_secs(48 * 3600),
        full_text_below: 600,
    }
}
