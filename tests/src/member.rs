//! Members of circles, each a device driven through the `hearth` binary,
//! and the steps circle tests repeat: letting every device sync until
//! nothing moves, and forming a circle through invite links.

use hearth_client::{Client, Invite, StorageKey};
use serde_json::Value;

use crate::RelayProcess;
use crate::cli::{Device, field, last_line};

/// How many times [`settle`] lets every device sync before giving up.
const MAX_ROUNDS: usize = 8;

/// A person with a device set up through `hearth init`.
#[derive(Debug)]
pub struct Member {
    /// Their device.
    pub device: Device,
    /// Their member id, as `hearth init` printed it.
    pub id: String,
    /// The name they gave.
    pub name: String,
}

impl Member {
    /// Sets up a device named `name` on `relay`.
    pub async fn new(relay: &RelayProcess, name: &str) -> Self {
        let device = Device::new();
        let id = device.init(relay, name).await;
        Self {
            device,
            id,
            name: name.to_owned(),
        }
    }

    /// See [`Device::ok`].
    pub async fn ok(&self, args: &[&str]) -> String {
        self.device.ok(args).await
    }

    /// See [`Device::json`].
    pub async fn json(&self, args: &[&str]) -> Vec<Value> {
        self.device.json(args).await
    }

    /// See [`Device::fails`].
    pub async fn fails(&self, args: &[&str], code: i32) -> String {
        self.device.fails(args, code).await
    }

    /// Posts with `args` (which must succeed and reach every member at
    /// once); returns the message id (the last line).
    pub async fn post(&self, args: &[&str]) -> String {
        let out = self.ok(args).await;
        assert!(
            out.starts_with("Sent ") && !out.contains(", but not to "),
            "sent to everyone at once: {out}"
        );
        let id = last_line(&out);
        assert_eq!(id.len(), 32, "a message id: {out}");
        id
    }

    /// `hearth feed CIRCLE --json`.
    pub async fn feed(&self, circle: &str) -> Vec<Value> {
        let lines = self.json(&["feed", circle, "--json"]).await;
        assert!(lines.iter().all(|l| l["circle"] == circle), "{lines:?}");
        lines
    }

    /// The texts of the `text` posts in the feed of `circle`.
    pub async fn feed_texts(&self, circle: &str) -> Vec<String> {
        let feed = self.feed(circle).await;
        let texts: Vec<Value> = feed.into_iter().filter(|l| l["type"] == "text").collect();
        field(&texts, "text")
    }

    /// `hearth circle list --json`.
    pub async fn circles(&self) -> Vec<Value> {
        self.json(&["circle", "list", "--json"]).await
    }

    /// The `circle list --json` line of `circle`.
    pub async fn circle(&self, circle: &str) -> Value {
        let listed = self.circles().await;
        let mut this = listed.iter().filter(|c| c["id"] == circle);
        match (this.next(), this.next()) {
            (Some(line), None) => line.clone(),
            _ => panic!("{} lists {circle} not once: {listed:?}", self.name),
        }
    }

    /// The device opened in this process through the SDK (no `hearth`
    /// command may run meanwhile): for what the binary never does, such as
    /// the SDK's hooks that play a compromised device.
    pub async fn open(&self) -> Client {
        let path = self.device.home().join("key");
        let key = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("reading {} failed: {e}", path.display()));
        let key: [u8; 32] = key
            .try_into()
            .unwrap_or_else(|_| panic!("{} is not 32 bytes", path.display()));
        match Client::open(self.device.home(), StorageKey::from_bytes(key)).await {
            Ok(client) => client,
            Err(error) => panic!("opening {}'s device failed: {error}", self.name),
        }
    }

    /// This device's mailbox id and a send token for it, from a contact
    /// link: what anyone the member gives a link to knows.
    pub async fn mailbox(&self) -> Invite {
        let out = self.ok(&["contact", "invite"]).await;
        last_line(&out)
            .parse()
            .unwrap_or_else(|e| panic!("not a contact link ({e}): {out}"))
    }
}

/// Syncs every device in turn until a whole round prints nothing new;
/// returns what each device's syncs printed (`sync --json` lines).
pub async fn settle(members: &[&Member]) -> Vec<Vec<Value>> {
    let mut printed = vec![Vec::new(); members.len()];
    for _ in 0..MAX_ROUNDS {
        let mut quiet = true;
        for (member, printed) in members.iter().zip(&mut printed) {
            let lines = member.json(&["sync", "--json"]).await;
            quiet &= lines.is_empty();
            printed.extend(lines);
        }
        if quiet {
            return printed;
        }
    }
    panic!("the devices were still exchanging messages after {MAX_ROUNDS} rounds: {printed:?}");
}

/// `facilitator` creates a circle named `name` and invites `members`, who
/// join with their links; once everyone synced, all of them see it active
/// with everyone in it. Returns the circle id.
pub async fn form_circle(name: &str, facilitator: &Member, members: &[&Member]) -> String {
    let out = facilitator.ok(&["circle", "create", name]).await;
    let circle = last_line(&out);
    assert_eq!(circle.len(), 26, "a circle id: {out}");
    for member in members {
        let out = facilitator.ok(&["circle", "invite", &circle]).await;
        let link = last_line(&out);
        assert!(link.starts_with("hearth://invite/"), "{out}");
        let joined = member.ok(&["circle", "join", &link]).await;
        assert_eq!(last_line(&joined), circle, "{joined}");
        let listed = member.circle(&circle).await;
        assert_eq!(listed["state"], "joining");
        assert_eq!(listed["name"], name, "the link names the circle");
    }
    let mut everyone = vec![facilitator];
    everyone.extend_from_slice(members);
    settle(&everyone).await;
    for member in &everyone {
        let listed = member.circle(&circle).await;
        assert_eq!(listed["state"], "active", "{}: {listed}", member.name);
        assert_eq!(
            listed["members"],
            everyone.len(),
            "{}: {listed}",
            member.name
        );
    }
    circle
}
