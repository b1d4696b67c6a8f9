//! What happens, as an async stream of [`Event`]s.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::circles::feed::CircleMessage;
use crate::circles::{Circle, CircleId, JoinRefusal};
use crate::contacts::Contact;
use crate::ids::{MemberId, MessageId};
use crate::messages::{FailureReason, Message};

/// Something the app may want to show or react to.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A message arrived (it is already stored in the history).
    Message(Message),
    /// A queued message was stored by the recipient's relay.
    MessageSent {
        /// The recipient.
        to: MemberId,
        /// The message.
        id: MessageId,
    },
    /// A message could not be delivered.
    DeliveryFailed {
        /// The recipient.
        to: MemberId,
        /// The message.
        id: MessageId,
        /// Why.
        reason: FailureReason,
        /// Whether it stays queued and is retried ([`FailureReason::MailboxFull`]
        /// and [`FailureReason::RateLimited`]); otherwise it is dropped.
        will_retry: bool,
    },
    /// A new contact: someone accepted our invite, or we accepted theirs.
    ContactAdded(Contact),
    /// An incoming envelope was refused (and acknowledged, so the mailbox
    /// keeps flowing). The conversation keeps working.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
    /// The connection to this device's relay changed.
    ConnectionState(ConnectionState),
    /// A circle message arrived (it is already stored in the feed).
    CircleMessage(CircleMessage),
    /// A circle changed: we joined it, its roster, name, rules or our role
    /// changed, we left or were removed.
    CircleChanged(Circle),
    /// A facilitator refused our request to join a circle.
    CircleJoinRefused {
        /// The circle.
        circle: CircleId,
        /// Why.
        reason: JoinRefusal,
    },
}

/// Why an incoming envelope was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// It does not decrypt: tampered with, damaged, or not for this device.
    Undecryptable,
    /// It decrypts but is malformed.
    Malformed,
    /// It is from a sender who is not a contact (and carries no valid
    /// contact request).
    UnknownSender,
    /// It was already received (a replay).
    Replayed,
    /// A contact request with an invite secret this device never issued.
    UnknownInvite,
    /// A contact request with an invite secret that was already used.
    InviteAlreadyUsed,
    /// A kind of envelope this version cannot process.
    Unsupported,
    /// A circle message whose signature does not verify.
    BadSignature,
    /// A roster version not signed by a facilitator of the version before
    /// it, or otherwise invalid.
    Forged,
    /// It needs something that has not arrived yet (a sender key, a roster
    /// version), but its sender (as its certificate names it), or senders
    /// this device does not know together, already have as many envelopes
    /// waiting as a device keeps. Nothing held before is dropped for it:
    /// a flood from one sender cannot push out others' messages.
    TooManyHeld,
    /// It waited for what it needed (a sender key, a roster version) longer
    /// than a device keeps messages waiting (14 days) and was given up: a
    /// message that could not be read.
    HeldTooLong,
}

/// The state of the connection to this device's relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connecting (or reconnecting).
    Connecting,
    /// Connected and authenticated: deliveries flow.
    Connected,
    /// Disconnected; the next attempt is in `retry_in` (if the client keeps
    /// trying).
    Disconnected {
        /// Delay before the next attempt.
        retry_in: Duration,
    },
}

/// Fans events out to every subscriber.
#[derive(Debug, Default)]
pub(crate) struct Events {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
}

impl Events {
    /// A new subscription receiving every event from now on.
    pub(crate) fn subscribe(&self) -> EventStream {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().push(sender);
        EventStream { receiver }
    }

    /// Sends `event` to every live subscriber.
    pub(crate) fn emit(&self, event: Event) {
        self.lock()
            .retain(|subscriber| subscriber.send(event.clone()).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<Event>>> {
        // A panic while holding this lock cannot leave the list inconsistent.
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A stream of [`Event`]s (implements `futures_core::Stream`). Events are
/// buffered until read; drop the stream to unsubscribe.
#[derive(Debug)]
pub struct EventStream {
    receiver: mpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    /// The next event, waiting for one; `None` once the client is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }

    /// The next event if one is buffered.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }
}

impl futures_core::Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.receiver.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_every_event_and_dropped_ones_are_forgotten() {
        let events = Events::default();
        let mut a = events.subscribe();
        let b = events.subscribe();
        drop(b);
        let state = Event::ConnectionState(ConnectionState::Connected);
        events.emit(state.clone());
        assert_eq!(a.recv().await, Some(state));
        assert_eq!(a.try_recv(), None);
        assert_eq!(events.lock().len(), 1);
    }
}
