//! What every system under comparison provides: a small trait the one
//! workload definition ([`super::drive`]) drives, one implementation per
//! system in its own file.
//!
//! The workload's shape is a [`Topology`]: `groups` senders, each sending
//! every message to its own `fanout` mailboxes (1 for 1:1 check-ins, 30
//! for a circle). Each system maps that onto its natural form: one Hearth
//! send with `fanout` recipients, one MQTT publish to a topic with
//! `fanout` subscribers, one JetStream publish to a subject with `fanout`
//! durable consumers, one XADD to a stream with `fanout` consumer groups,
//! one INSERT of `fanout` rows.

use std::future::Future;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Who sends to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Topology {
    /// Senders; sender `g` sends to group `g`.
    pub(crate) groups: usize,
    /// Mailboxes (recipients) per group.
    pub(crate) fanout: usize,
}

impl Topology {
    /// All mailboxes: group `g` owns `g * fanout .. (g + 1) * fanout`.
    pub(crate) fn mailboxes(&self) -> usize {
        self.groups * self.fanout
    }

    /// The group a mailbox belongs to.
    pub(crate) fn group_of(&self, mailbox: usize) -> usize {
        mailbox / self.fanout.max(1)
    }

    /// The mailboxes of group `group`.
    pub(crate) fn members(&self, group: usize) -> std::ops::Range<usize> {
        group * self.fanout..(group + 1) * self.fanout
    }
}

/// What an acknowledgement from a system means, stated per result row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Durability {
    /// Whether an acknowledged message had been fsynced to disk.
    pub(crate) fsynced_before_ack: bool,
    /// How the system keeps messages, in a few words.
    pub(crate) note: String,
}

/// How a row's clients reach the server, stated per result row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Transport {
    /// Whether the connections are encrypted.
    pub(crate) encrypted: bool,
    /// The protocol in a few words, e.g. `QUIC, TLS 1.3`, `TCP` or
    /// `TLS 1.3 over TCP`; empty in results written before it was recorded.
    pub(crate) protocol: String,
}

impl Transport {
    /// Plaintext TCP.
    pub(crate) fn plaintext() -> Self {
        Self {
            encrypted: false,
            protocol: "TCP".into(),
        }
    }

    /// QUIC (always TLS 1.3).
    pub(crate) fn quic() -> Self {
        Self {
            encrypted: true,
            protocol: "QUIC, TLS 1.3".into(),
        }
    }

    /// TLS over TCP, `version` as negotiated (e.g. `TLS 1.3`).
    pub(crate) fn tls(version: &str) -> Self {
        Self {
            encrypted: true,
            protocol: format!("{version} over TCP"),
        }
    }

    /// The table cell: `no`, or `yes (` the protocol `)`.
    pub(crate) fn cell(&self) -> String {
        match (self.encrypted, self.protocol.is_empty()) {
            (_, true) => "–".into(),
            (false, false) => "no".into(),
            (true, false) => format!("yes ({})", self.protocol),
        }
    }
}

/// One system under comparison: sets itself up for a topology and opens
/// sender and receiver connections.
pub(crate) trait Peer: Send + Sync {
    /// One sender's connection.
    type Sender: PeerSender + 'static;
    /// One recipient's connection (one mailbox).
    type Receiver: PeerReceiver + 'static;

    /// Creates what `topology` needs (streams, tables, …) from scratch.
    fn prepare(&self, topology: Topology) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Connects mailbox `mailbox`'s owner and subscribes it; a second call
    /// for the same mailbox reconnects it to what it missed meanwhile.
    fn connect_receiver(
        &self,
        mailbox: usize,
    ) -> impl Future<Output = anyhow::Result<Self::Receiver>> + Send;

    /// Connects sender `group` (which sends to that group's mailboxes).
    fn connect_sender(
        &self,
        group: usize,
    ) -> impl Future<Output = anyhow::Result<Self::Sender>> + Send;

    /// Removes everything `prepare` created.
    fn cleanup(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A sender connection. Sends may run concurrently on one connection.
pub(crate) trait PeerSender: Send + Sync {
    /// Sends `body` to the sender's group; returns once the system
    /// acknowledged it. `id` is unique per sender within a run.
    fn send(&self, id: u64, body: Bytes) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A recipient connection.
pub(crate) trait PeerReceiver: Send {
    /// Waits for the next messages; `Ok(None)` once the connection is gone.
    fn receive(&mut self) -> impl Future<Output = anyhow::Result<Option<Vec<Bytes>>>> + Send;

    /// Acknowledges (and so deletes) what the last `receive` returned.
    /// An implementation may finish it in the background.
    fn ack(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_assigns_each_mailbox_to_one_group() {
        let circle = Topology {
            groups: 2,
            fanout: 30,
        };
        assert_eq!(circle.mailboxes(), 60);
        assert_eq!(circle.members(1), 30..60);
        assert_eq!(circle.group_of(29), 0);
        assert_eq!(circle.group_of(30), 1);
        let one_to_one = Topology {
            groups: 100,
            fanout: 1,
        };
        assert_eq!(one_to_one.group_of(42), 42);
        assert_eq!(one_to_one.members(42), 42..43);
    }

    #[test]
    fn transports_say_whether_they_are_encrypted() {
        assert_eq!(Transport::plaintext().cell(), "no");
        assert_eq!(Transport::quic().cell(), "yes (QUIC, TLS 1.3)");
        assert_eq!(Transport::tls("TLS 1.2").cell(), "yes (TLS 1.2 over TCP)");
        assert_eq!(Transport::default().cell(), "–", "unknown in old results");
    }
}
