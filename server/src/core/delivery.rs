//! Delivery windows: which waiting envelopes go out on which connection.

use std::collections::BTreeMap;

use super::{DeliveryPlan, RelayCore};
use crate::ids::ConnId;

/// Bytes kept free in a `Delivery` frame for its framing and per-envelope
/// fields.
const FRAME_OVERHEAD: usize = 64;
const PER_ENVELOPE_OVERHEAD: usize = 32;

/// A connection's view of one mailbox it owns.
#[derive(Debug, Default)]
pub(crate) struct Subscription {
    /// The next sequence number this connection has not been sent.
    pub(crate) cursor: u64,
    /// Sent but not acknowledged: sequence number → size.
    pub(crate) in_flight: BTreeMap<u64, u32>,
}

impl RelayCore {
    /// The next envelopes to send on `conn`, oldest first, within its
    /// delivery window and one frame. `None` when there is nothing to send
    /// (or the window is full: acknowledgements reopen it).
    pub fn poll_delivery(&mut self, conn: ConnId) -> Option<DeliveryPlan> {
        let state = self.conns.get_mut(&conn)?;
        let window = self.config.delivery_window.saturating_sub(state.in_flight);
        let frame_room = self.config.max_frame_bytes.saturating_sub(FRAME_OVERHEAD);
        for (mailbox_id, sub) in state.subscriptions.iter_mut() {
            let Some(mailbox) = self.mailboxes.get(mailbox_id) else {
                continue;
            };
            let mut envelopes = Vec::new();
            let mut frame_bytes = 0usize;
            for (&seq, waiting) in mailbox.waiting.range(sub.cursor..) {
                if !waiting.durable || envelopes.len() >= window.min(self.config.delivery_batch) {
                    break;
                }
                let size = waiting.meta.size;
                let wire = size as usize + PER_ENVELOPE_OVERHEAD;
                let bytes_full =
                    state.in_flight_bytes + u64::from(size) > self.config.delivery_window_bytes;
                // A window or frame always admits one envelope when empty,
                // so a large envelope can't stall its mailbox.
                if (bytes_full && state.in_flight > 0)
                    || (frame_bytes + wire > frame_room && !envelopes.is_empty())
                {
                    break;
                }
                frame_bytes += wire;
                state.in_flight += 1;
                state.in_flight_bytes += u64::from(size);
                sub.in_flight.insert(seq, size);
                envelopes.push((seq, waiting.meta));
            }
            if let Some((last, _)) = envelopes.last() {
                sub.cursor = last + 1;
                return Some(DeliveryPlan {
                    mailbox: *mailbox_id,
                    envelopes,
                });
            }
        }
        None
    }
}
