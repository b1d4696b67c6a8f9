//! Circle helpers shared by the circle tests: a group of clients on one
//! relay, forming a circle through invites, and syncing until quiet.

use std::time::Duration;

use hearth_client::{Circle, CircleId, CircleState, Client, Content, Event, MemberId};
use hearth_relay::core::RegistrationMode;

use super::*;

/// Everyone syncs, round after round, until a round changes nothing.
pub(crate) async fn settle(clients: &[&Client]) -> Vec<Vec<Event>> {
    let mut all = vec![Vec::new(); clients.len()];
    for _ in 0..10 {
        let mut quiet = true;
        for (client, seen) in clients.iter().zip(all.iter_mut()) {
            let events: Vec<Event> = sync(client)
                .await
                .into_iter()
                .filter(|e| !matches!(e, Event::ConnectionState(_) | Event::MessageSent { .. }))
                .collect();
            quiet &= events.is_empty() && client.queued().await.unwrap() == 0;
            seen.extend(events);
        }
        if quiet {
            return all;
        }
    }
    panic!("the circle did not settle in 10 rounds");
}

pub(crate) fn texts(client_feed: &[hearth_client::CircleMessage]) -> Vec<(MemberId, String)> {
    client_feed
        .iter()
        .filter_map(|m| match &m.content {
            Content::Text(text) => Some((m.sender, text.clone())),
            _ => None,
        })
        .collect()
}

pub(crate) async fn feed_texts(client: &Client, circle: CircleId) -> Vec<(MemberId, String)> {
    texts(&client.feed(circle).await.unwrap())
}

pub(crate) async fn circle(client: &Client, id: CircleId) -> Circle {
    client.find_circle(&id.to_string()).await.unwrap()
}

pub(crate) async fn join(facilitator: &Client, joiner: &Client, id: CircleId) {
    let link = within(
        "invite",
        facilitator.circle_invite(id, Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    assert!(link.starts_with("hearth://invite/"), "{link}");
    assert_eq!(within("join", joiner.join_circle(&link)).await.unwrap(), id);
    assert_eq!(circle(joiner, id).await.state, CircleState::Joining);
}

pub(crate) struct Group {
    pub(crate) _relay: Relay,
    pub(crate) _homes: Vec<tempfile::TempDir>,
    pub(crate) clients: Vec<Client>,
}

impl Group {
    pub(crate) async fn new(names: &[&str]) -> Self {
        let relay = Relay::start(RegistrationMode::Open).await;
        let mut homes = Vec::new();
        let mut clients = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let home = tempfile::tempdir().unwrap();
            let byte = u8::try_from(i + 1).unwrap();
            clients.push(create(home.path(), key(byte), &relay.address(), name).await);
            homes.push(home);
        }
        Self {
            _relay: relay,
            _homes: homes,
            clients,
        }
    }

    pub(crate) fn all(&self) -> Vec<&Client> {
        self.clients.iter().collect()
    }

    /// The first client creates a circle and everyone else joins it.
    pub(crate) async fn circle(&self, name: &str) -> CircleId {
        let facilitator = &self.clients[0];
        let id = facilitator.create_circle(name).await.unwrap().id;
        for joiner in &self.clients[1..] {
            join(facilitator, joiner, id).await;
            settle(&self.all()).await;
        }
        id
    }
}
