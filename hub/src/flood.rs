//! Ceilings on requests per connection and per source address, ahead of identity: a flood is cut with a
//! 429 before it costs a token verification, a policy decision or an audit write.
//!
//! A connection over its ceiling (`server.max_requests_per_connection_per_second`) gets its 429 with
//! `connection: close` and is closed, so a client that pipelines or keeps a connection busy must open new
//! ones, each counted against its address.
//!
//! The source is the TCP peer of the connection. Behind a load balancer or proxy every request shares the
//! proxy's address, so there the ceiling must be raised or turned off (`server.max_requests_per_source_per_second
//! = 0`) and the proxy made to limit instead; on AWS Lambda there is no peer address and API Gateway's
//! throttling applies. The counters are a token bucket per address (GCRA from the `governor` crate), pruned
//! as they go idle.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use causeway_server::PeerAddr;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::HubError;

/// Checks between two prunings of idle addresses.
const PRUNE_EVERY: u64 = 4096;

/// Requests per second per source address.
#[derive(Debug)]
pub struct SourceLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    per_second: u32,
    checks: AtomicU64,
}

impl SourceLimit {
    /// `per_second` requests a second per address, in bursts of as many; `None` when 0 (off).
    pub fn new(per_second: u32) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(per_second)?;
        Some(Arc::new(Self {
            limiter: RateLimiter::dashmap(Quota::per_second(rate)),
            per_second,
            checks: AtomicU64::new(0),
        }))
    }

    /// Admits one request from `address`, or says how many seconds until the next would be.
    ///
    /// # Errors
    ///
    /// The wait, in whole seconds (at least 1).
    pub fn admit(&self, address: IpAddr) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(&address).map_err(|not_until| {
            let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs().max(1)
        })
    }
}

/// The ceilings the middleware applies.
#[derive(Debug, Clone)]
pub struct FloodLimits {
    /// Requests per second per source address; `None`: off.
    pub source: Option<Arc<SourceLimit>>,
    /// Requests per second per connection; 0: off.
    pub per_connection: u32,
}

/// The middleware: requests over their connection's or their address's ceiling get a 429 before anything
/// else runs, and a connection over its ceiling is closed. Requests without connection info (Lambda,
/// in-process tests) pass.
pub async fn limit_sources(
    State(limits): State<FloodLimits>,
    request: Request,
    next: Next,
) -> Response {
    let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<PeerAddr>>() else {
        return next.run(request).await;
    };
    if limits.per_connection > 0 && !peer.requests.admit(limits.per_connection) {
        let mut response = HubError::BudgetExceeded {
            message: format!(
                "more than {} requests a second on one connection; the connection is closed",
                limits.per_connection
            ),
            retry_after_secs: 1,
        }
        .into_response();
        // HTTP/2 has no `connection` header; there the stream is refused and the connection stays.
        if request.version() <= Version::HTTP_11 {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return response;
    }
    if let Some(limit) = limits.source.as_deref()
        && let Err(retry_after_secs) = limit.admit(peer.addr.ip())
    {
        return HubError::BudgetExceeded {
            message: format!(
                "more than {} requests a second from this address; retry in {retry_after_secs} s",
                limit.per_second
            ),
            retry_after_secs,
        }
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_cut_at_its_ceiling_and_others_are_not() {
        let limit = SourceLimit::new(5).unwrap();
        let flooder: IpAddr = "10.0.0.7".parse().unwrap();
        for _ in 0..5 {
            assert!(limit.admit(flooder).is_ok());
        }
        assert_eq!(limit.admit(flooder), Err(1));
        assert!(limit.admit("10.0.0.8".parse().unwrap()).is_ok());
        assert!(SourceLimit::new(0).is_none());
    }
}
