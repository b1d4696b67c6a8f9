//! The throughput workload: N sender clients each send to one of N
//! receiver clients (one mailbox each) over real QUIC connections. Every
//! envelope is sent (the relay answers after fdatasync), delivered and
//! acknowledged (which deletes it); receivers time send→delivery.
//!
//! Closed loop: each sender keeps up to K sends in flight and stamps each
//! body with the time it actually sent it. Open loop (`--rate`): each
//! sender follows a fixed schedule and stamps the *scheduled* time, so a
//! slow relay shows up as latency instead of a slower schedule (no
//! coordinated omission).
//!
//! The run itself is `compare`'s workload driver with the relay as the
//! peer, so `throughput` and `compare` measure the relay the same way.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

use crate::compare::drive::{self, Outcome, Scenario};
use crate::compare::hearth::HearthPeer;
use crate::compare::peer::Topology;
use crate::compare::server::ServerProbe;
use crate::relay_process::RelayProcess;

/// How senders pace their sends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pacing {
    /// Each sender keeps up to `in_flight` sends outstanding.
    Closed {
        /// Sends outstanding per sender.
        in_flight: usize,
    },
    /// All senders together send `rate` envelopes per second on a fixed
    /// schedule; each keeps at most `max_in_flight` outstanding (later
    /// sends wait, and their wait counts as latency).
    Open {
        /// Envelopes per second, all senders together.
        rate: f64,
        /// Sends outstanding per sender at most.
        max_in_flight: usize,
    },
}

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct ThroughputPlan {
    /// Sender clients (and as many receiver clients).
    pub(crate) clients: usize,
    /// Body size of each envelope in bytes.
    pub(crate) body_bytes: usize,
    /// Warm-up before the measured phase.
    pub(crate) warmup: Duration,
    /// The measured phase.
    pub(crate) duration: Duration,
    /// Closed or open loop.
    pub(crate) pacing: Pacing,
    /// How long to wait after the last send for the last deliveries.
    pub(crate) drain_timeout: Duration,
    /// Connections per client UDP socket.
    pub(crate) per_endpoint: usize,
    /// Connections set up at the same time.
    pub(crate) connect_concurrency: usize,
}

/// Runs the workload against `relay`.
pub(crate) async fn run(plan: &ThroughputPlan, relay: &RelayProcess) -> anyhow::Result<Outcome> {
    let peer = Arc::new(HearthPeer::new(relay.address().clone(), plan.per_endpoint));
    let scenario = Scenario {
        topology: Topology {
            groups: plan.clients,
            fanout: 1,
        },
        body_bytes: plan.body_bytes,
        warmup: plan.warmup,
        duration: plan.duration,
        pacing: plan.pacing,
        drain_timeout: plan.drain_timeout,
        connect_concurrency: plan.connect_concurrency,
    };
    eprintln!(
        "warming up for {:?}, then measuring for {:?}…",
        plan.warmup, plan.duration
    );
    drive::run(&peer, &scenario, &ServerProbe::Pid(relay.pid())).await
}

/// When send number `k` is due: `offset + k × interval` nanoseconds.
pub(crate) fn scheduled_at(offset: f64, interval: f64, k: u64) -> u64 {
    (offset + k as f64 * interval) as u64
}

/// Checks a plan before running it.
pub(crate) fn validate(plan: &ThroughputPlan) -> anyhow::Result<()> {
    if plan.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if plan.duration.is_zero() {
        bail!("--duration must be longer than zero");
    }
    if let Pacing::Open { rate, .. } = plan.pacing
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of envelopes per second");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_schedule_spreads_senders_evenly() {
        // 4 senders at 1,000/s in total: each sends every 4 ms, offset by 1 ms.
        let (rate, senders) = (1000.0, 4usize);
        let interval = senders as f64 * 1e9 / rate;
        let mut due: Vec<u64> = (0..senders as u32)
            .flat_map(|i| {
                let offset = f64::from(i) * 1e9 / rate;
                (0..3).map(move |k| scheduled_at(offset, interval, k))
            })
            .collect();
        due.sort_unstable();
        let expected: Vec<u64> = (0..12).map(|n| n * 1_000_000).collect();
        assert_eq!(due, expected);
    }

    #[test]
    fn validation_refuses_empty_or_endless_plans() {
        let plan = ThroughputPlan {
            clients: 1,
            body_bytes: 1024,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            pacing: Pacing::Closed { in_flight: 8 },
            drain_timeout: Duration::from_secs(1),
            per_endpoint: 100,
            connect_concurrency: 10,
        };
        assert!(validate(&plan).is_ok());
        assert!(
            validate(&ThroughputPlan {
                clients: 0,
                ..plan.clone()
            })
            .is_err()
        );
        assert!(
            validate(&ThroughputPlan {
                duration: Duration::ZERO,
                ..plan.clone()
            })
            .is_err()
        );
        let nan = Pacing::Open {
            rate: f64::NAN,
            max_in_flight: 1,
        };
        assert!(
            validate(&ThroughputPlan {
                pacing: nan,
                ..plan.clone()
            })
            .is_err()
        );
        let open = Pacing::Open {
            rate: 100.0,
            max_in_flight: 1,
        };
        assert!(
            validate(&ThroughputPlan {
                pacing: open,
                ..plan
            })
            .is_ok()
        );
    }
}
