//! What a benchmark envelope carries and how the run keeps time and counts.
//!
//! Every body starts with a [`Probe`]: the send timestamp (nanoseconds since
//! the run's [`Clock`] origin), the sender's index and its counter. The rest
//! of the body is random bytes, like real ciphertext (so a compressing store
//! gains nothing). Receivers record which counters arrived in a
//! [`CounterSet`] to check that each envelope was delivered exactly once.

use std::time::{Duration, Instant};

use bytes::{BufMut as _, Bytes, BytesMut};
use hdrhistogram::Histogram;

/// Bytes at the start of a body taken by the probe.
pub(crate) const PROBE_LEN: usize = 8 + 4 + 8;

/// Largest latency a histogram tracks exactly (longer ones saturate).
const MAX_TRACKED_LATENCY: Duration = Duration::from_secs(300);

/// The measurement fields at the start of a benchmark envelope's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    /// When the envelope was (or was scheduled to be) sent, in nanoseconds
    /// since the run's origin.
    pub(crate) sent_at: u64,
    /// Index of the sending client (also the index of its receiver).
    pub(crate) sender: u32,
    /// The sender's counter: unique per sender within a run.
    pub(crate) counter: u64,
}

impl Probe {
    /// A body of `padding.len()` bytes (at least [`PROBE_LEN`]): this probe,
    /// then the tail of `padding`.
    pub(crate) fn encode(&self, padding: &[u8]) -> Bytes {
        let size = padding.len().max(PROBE_LEN);
        let mut body = BytesMut::with_capacity(size);
        body.put_u64(self.sent_at);
        body.put_u32(self.sender);
        body.put_u64(self.counter);
        body.put_slice(padding.get(PROBE_LEN..).unwrap_or_default());
        body.freeze()
    }

    /// Reads the probe at the start of `body`; `None` if it is too short.
    pub(crate) fn decode(body: &[u8]) -> Option<Self> {
        let sent_at = u64::from_be_bytes(body.get(0..8)?.try_into().ok()?);
        let sender = u32::from_be_bytes(body.get(8..12)?.try_into().ok()?);
        let counter = u64::from_be_bytes(body.get(12..20)?.try_into().ok()?);
        Some(Self {
            sent_at,
            sender,
            counter,
        })
    }

    /// The idempotency key of this envelope's send: unique per sender and
    /// counter within a run (`run` tells runs apart).
    pub(crate) fn client_message_id(&self, run: u32) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[0..4].copy_from_slice(&run.to_be_bytes());
        id[4..8].copy_from_slice(&self.sender.to_be_bytes());
        id[8..16].copy_from_slice(&self.counter.to_be_bytes());
        id
    }
}

/// The run's time line: an origin, the end of the warm-up and the end of
/// the measured phase, all in nanoseconds since the origin.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: Instant,
    /// Start of the measured phase.
    pub(crate) warm_at: u64,
    /// End of the measured phase: no envelope is sent at or after it.
    pub(crate) end_at: u64,
}

impl Clock {
    /// A time line starting now: `warmup`, then `measured`.
    pub(crate) fn start(warmup: Duration, measured: Duration) -> Self {
        let warm_at = nanos(warmup);
        Self {
            origin: Instant::now(),
            warm_at,
            end_at: warm_at.saturating_add(nanos(measured)),
        }
    }

    /// Nanoseconds since the origin.
    pub(crate) fn now(&self) -> u64 {
        nanos(self.origin.elapsed())
    }

    /// The instant `at` nanoseconds after the origin.
    pub(crate) fn instant(&self, at: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.origin + Duration::from_nanos(at))
    }

    /// Whether `at` falls in the measured phase.
    pub(crate) fn in_window(&self, at: u64) -> bool {
        (self.warm_at..self.end_at).contains(&at)
    }

    /// Length of the measured phase in seconds.
    pub(crate) fn window_seconds(&self) -> f64 {
        (self.end_at - self.warm_at) as f64 / 1e9
    }
}

/// `duration` in nanoseconds, saturating.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// An empty latency histogram in nanoseconds (3 significant digits).
pub(crate) fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1_000, nanos(MAX_TRACKED_LATENCY), 3)
        .map_err(|e| anyhow::anyhow!("creating a latency histogram: {e}"))
}

/// A set of counters `0..` as a growable bit set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CounterSet {
    words: Vec<u64>,
    len: u64,
}

impl CounterSet {
    /// Adds `counter`; returns `false` if it was already there.
    pub(crate) fn insert(&mut self, counter: u64) -> bool {
        let (word, bit) = Self::position(counter);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        self.len += u64::from(fresh);
        fresh
    }

    /// How many counters the set holds.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// How many counters of `self` are not in `other`.
    pub(crate) fn count_missing_from(&self, other: &Self) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, word)| {
                u64::from((word & !other.words.get(i).copied().unwrap_or(0)).count_ones())
            })
            .sum()
    }

    fn position(counter: u64) -> (usize, u64) {
        // Counters stay far below usize::MAX * 64 in any bounded run.
        let word = usize::try_from(counter / 64).unwrap_or(usize::MAX - 1);
        (word, 1u64 << (counter % 64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_round_trips_and_pads_to_the_requested_size() {
        let probe = Probe {
            sent_at: 123_456_789,
            sender: 42,
            counter: 7,
        };
        let padding = vec![0xAB; 1024];
        let body = probe.encode(&padding);
        assert_eq!(body.len(), 1024);
        assert_eq!(Probe::decode(&body), Some(probe));
        assert!(body[PROBE_LEN..].iter().all(|&b| b == 0xAB));
    }

    #[test]
    fn probe_body_is_never_shorter_than_the_probe() {
        let probe = Probe {
            sent_at: 1,
            sender: 2,
            counter: 3,
        };
        let body = probe.encode(&[]);
        assert_eq!(body.len(), PROBE_LEN);
        assert_eq!(Probe::decode(&body), Some(probe));
        assert_eq!(Probe::decode(&body[..PROBE_LEN - 1]), None);
    }

    #[test]
    fn message_ids_differ_by_run_sender_and_counter() {
        let a = Probe {
            sent_at: 0,
            sender: 1,
            counter: 2,
        };
        let b = Probe { counter: 3, ..a };
        let c = Probe { sender: 2, ..a };
        assert_ne!(a.client_message_id(9), b.client_message_id(9));
        assert_ne!(a.client_message_id(9), c.client_message_id(9));
        assert_ne!(a.client_message_id(9), a.client_message_id(10));
        assert_eq!(
            a.client_message_id(9),
            Probe { sent_at: 99, ..a }.client_message_id(9)
        );
    }

    #[test]
    fn counter_set_counts_fresh_inserts_and_differences() {
        let mut sent = CounterSet::default();
        let mut received = CounterSet::default();
        for counter in [0, 1, 63, 64, 200] {
            assert!(sent.insert(counter));
        }
        assert!(!sent.insert(64), "second insert is a duplicate");
        assert_eq!(sent.len(), 5);
        for counter in [0, 64, 200, 500] {
            received.insert(counter);
        }
        assert_eq!(received.len(), 4);
        assert_eq!(
            sent.count_missing_from(&received),
            2,
            "1 and 63 never arrived"
        );
        assert_eq!(received.count_missing_from(&sent), 1, "500 was never sent");
    }

    #[test]
    fn clock_window_is_half_open() {
        let clock = Clock::start(Duration::from_secs(1), Duration::from_secs(2));
        assert!(!clock.in_window(999_999_999));
        assert!(clock.in_window(1_000_000_000));
        assert!(clock.in_window(2_999_999_999));
        assert!(!clock.in_window(3_000_000_000));
        assert!((clock.window_seconds() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn histogram_tracks_microseconds_to_minutes() {
        let mut histogram = latency_histogram().unwrap();
        histogram.saturating_record(1_500_000);
        histogram.saturating_record(nanos(Duration::from_secs(100)));
        assert_eq!(histogram.len(), 2);
        let p50 = histogram.value_at_quantile(0.5) as f64;
        assert!((p50 - 1_500_000.0).abs() / 1_500_000.0 < 0.001, "{p50}");
    }
}
