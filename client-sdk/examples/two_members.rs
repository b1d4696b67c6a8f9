//! Two members meet through an invite link and talk, through a real relay.
//!
//! Start a relay that accepts registrations (e.g. `hearth-relay` with
//! `registration = "open"`), then:
//!
//! ```text
//! cargo run -p hearth-client --example two_members -- 'hearth://<fingerprint>@127.0.0.1:4433' [TOKEN]
//! ```
//!
//! `TOKEN` is a registration token for a private relay (used for both
//! members, so it needs two uses). The devices live in temporary folders
//! and are gone afterwards.

use std::time::Duration;

use hearth_client::{Client, Content, Event, RelayAddress, StorageKey};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let relay: RelayAddress = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: two_members RELAY_ADDRESS [REGISTRATION_TOKEN]"))?
        .parse()?;
    let token = args.next();
    let homes = (tempfile::tempdir()?, tempfile::tempdir()?);

    let dana = Client::create(
        homes.0.path(),
        StorageKey::generate(&mut rand::rng()),
        &relay,
        token.as_deref(),
        "Dana",
    )
    .await?;
    let sam = Client::create(
        homes.1.path(),
        StorageKey::generate(&mut rand::rng()),
        &relay,
        token.as_deref(),
        "Sam",
    )
    .await?;
    println!("Dana is {}", dana.member_id());
    println!("Sam is  {}", sam.member_id());

    let link = dana.invite_link().await?;
    println!("Dana's link: {link}");
    let dana_for_sam = sam.accept_invite(&link).await?;
    println!(
        "Sam added {} (safety number {})",
        dana_for_sam.label(),
        dana_for_sam.safety_number
    );

    sam.send_text(dana.member_id(), "Hi Dana, it's Sam from Tuesday's group.")
        .await?;
    show("Dana", &dana).await?;

    dana.send_text(sam.member_id(), "Hi Sam! Good to hear from you.")
        .await?;
    show("Sam", &sam).await?;

    println!("Dana's history with Sam:");
    for message in dana.history(sam.member_id()).await? {
        if let Content::Text(text) = message.content {
            println!("  {:?} {:?}: {text}", message.direction, message.status);
        }
    }
    Ok(())
}

/// Syncs `client` and prints what arrived.
async fn show(name: &str, client: &Client) -> anyhow::Result<()> {
    for event in client.sync(Duration::from_secs(1)).await?.events {
        match event {
            Event::ContactAdded(contact) => println!("{name}: new contact {}", contact.label()),
            Event::Message(message) => {
                if let Content::Text(text) = message.content {
                    println!("{name}: message from {}: {text}", message.member);
                }
            }
            Event::Rejected { reason } => println!("{name}: rejected an envelope ({reason:?})"),
            _ => {}
        }
    }
    Ok(())
}
