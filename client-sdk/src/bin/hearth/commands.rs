//! The commands, each a few SDK calls.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use hearth_client::{Client, Contact, Event, MAX_TEXT_BYTES, MessageId, MessageStatus};
use serde::Serialize;

use crate::args::{Cli, Command, ContactCommand, InitArgs};
use crate::home::{Home, PASSPHRASE_VAR, UsageError};
use crate::output::{self, Names};
use crate::{circle, posts};

/// Runs the command `cli` names.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    let home = Home::locate(cli.home)?;
    match cli.command {
        Command::Init(args) => init(&home, args).await,
        Command::Whoami { json } => whoami(&home, json).await,
        Command::Contact(command) => contact(&home, command).await,
        Command::Dm { member, text } => dm(&home, &member, &text).await,
        Command::Sync { wait, json } => sync(&home, wait, json).await,
        Command::History { member, json } => history(&home, &member, json).await,
        Command::Circle(command) => circle::run(&home, command).await,
        Command::Checkin(args) => posts::checkin(&home, args).await,
        Command::Say { circle, text } => posts::say_text(&home, &circle, &text).await,
        Command::Share(args) => posts::share(&home, args).await,
        Command::Gather(args) => posts::gather(&home, args).await,
        Command::Rsvp {
            circle,
            gathering,
            answer,
        } => posts::rsvp(&home, &circle, gathering, answer).await,
        Command::Goal(command) => posts::goal(&home, command).await,
        Command::Due { at, json } => posts::due(&home, at.as_deref(), json).await,
        Command::Support { circle, note } => posts::support(&home, &circle, &note).await,
        Command::React {
            circle,
            message,
            emoji,
        } => posts::react(&home, &circle, message, emoji).await,
        Command::Feed { circle, json } => posts::feed(&home, &circle, json).await,
    }
}

/// Writes one line to stdout (a closed pipe is an error, not a panic).
pub(crate) fn say(line: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("writing the output")
}

/// Opens the device in `home`.
pub(crate) async fn open(home: &Home) -> Result<Client> {
    if !home.is_set_up() {
        bail!(
            "no device is set up in {} (run: hearth init --relay ADDRESS)",
            home.dir().display()
        );
    }
    let secret = home.secret()?;
    Client::open(home.dir(), secret)
        .await
        .context("opening the device")
}

async fn init(home: &Home, args: InitArgs) -> Result<()> {
    if home.is_set_up() {
        bail!("a device is already set up in {}", home.dir().display());
    }
    let new = home.new_secret()?;
    let created = Client::create(
        home.dir(),
        new.secret.clone(),
        &args.relay,
        args.token.as_deref(),
        &args.name,
    )
    .await;
    let client = match created {
        Ok(client) => client,
        Err(error) => {
            new.discard();
            return Err(error).context("setting up the device");
        }
    };
    say(&format!(
        "Set up a new device in {} on {}.",
        home.dir().display(),
        client.relay()
    ))?;
    match &new.key_file {
        Some(path) => say(&format!(
            "Its store is encrypted under the key file {} (keep it private, and back it up with the folder).",
            path.display()
        ))?,
        None => say(&format!(
            "Its store is encrypted under the passphrase in {PASSPHRASE_VAR}."
        ))?,
    }
    say("Your member id:")?;
    say(&client.member_id().to_string())?;
    client.close().await;
    Ok(())
}

#[derive(Debug, Serialize)]
struct Whoami<'a> {
    member_id: String,
    name: &'a str,
    relay: String,
    home: String,
}

async fn whoami(home: &Home, as_json: bool) -> Result<()> {
    let client = open(home).await?;
    let who = Whoami {
        member_id: client.member_id().to_string(),
        name: client.display_name(),
        relay: client.relay().to_string(),
        home: home.dir().display().to_string(),
    };
    if as_json {
        return say(&output::json(&who));
    }
    say(&format!("name:      {}", output::clean(who.name)))?;
    say(&format!("member id: {}", who.member_id))?;
    say(&format!("relay:     {}", who.relay))?;
    say(&format!("home:      {}", who.home))
}

async fn contact(home: &Home, command: ContactCommand) -> Result<()> {
    let client = open(home).await?;
    match command {
        ContactCommand::Invite => {
            let link = client
                .invite_link()
                .await
                .context("making a contact link")?;
            say("Give this link to one person; it works once:")?;
            say(&link)?;
        }
        ContactCommand::Accept { link } => accept(&client, &link).await?,
        ContactCommand::List { json } => list(&client, json).await?,
        ContactCommand::Verify {
            member,
            safety_number,
        } => {
            let contact = find(&client, &member).await?;
            let number = safety_number.join(" ");
            let verified = client
                .verify_contact(contact.member_id, &number)
                .await
                .with_context(|| format!("verifying {}", label(&contact)))?;
            say(&format!("{} is verified.", label(&verified)))?;
        }
    }
    client.close().await;
    Ok(())
}

async fn accept(client: &Client, link: &str) -> Result<()> {
    let contact = client
        .accept_invite(link)
        .await
        .context("accepting the link")?;
    say(&format!(
        "Added {} ({}).",
        label(&contact),
        contact.member_id
    ))?;
    say(&format!("Safety number: {}", contact.safety_number))?;
    say(&format!(
        "Compare it with them (in person or on a call), then run: hearth contact verify {} NUMBER",
        contact.member_id
    ))?;
    if client.queued().await? == 0 {
        say("Your contact request was sent.")
    } else {
        say("Your contact request is queued; `hearth sync` sends it.")
    }
}

async fn list(client: &Client, as_json: bool) -> Result<()> {
    let contacts = client.contacts().await?;
    if contacts.is_empty() && !as_json {
        return say("No contacts yet (hearth contact invite / hearth contact accept LINK).");
    }
    for contact in &contacts {
        if as_json {
            say(&output::contact_json(contact, "contact"))?;
        } else {
            say(&output::contact_text(contact))?;
        }
    }
    Ok(())
}

/// The contact `query` names (a member id, or a unique name).
async fn find(client: &Client, query: &str) -> Result<Contact> {
    client
        .contact(query)
        .await
        .with_context(|| format!("finding the contact {:?}", output::clean(query)))
}

/// A contact's name, or its member id.
fn label(contact: &Contact) -> String {
    output::clean(&contact.label())
}

async fn dm(home: &Home, member: &str, text: &str) -> Result<()> {
    let text = text_or_stdin(text)?;
    if text.is_empty() {
        return Err(UsageError("the message is empty".into()).into());
    }
    let client = open(home).await?;
    let contact = find(&client, member).await?;
    let mut events = client.events();
    let id = client
        .send_text(contact.member_id, &text)
        .await
        .context("sending")?;
    let failure = std::iter::from_fn(|| events.try_recv()).find_map(|event| match event {
        Event::DeliveryFailed {
            id: failed, reason, ..
        } if failed == id => Some(reason),
        _ => None,
    });
    let status = message_status(&client, &contact, id).await?;
    client.close().await;
    let to = label(&contact);
    match status {
        MessageStatus::Queued => {
            let why = failure.map_or("the relay can't be reached right now", output::failure_text);
            say(&format!(
                "queued for {to} ({why}); `hearth sync` sends it: {id}"
            ))
        }
        MessageStatus::Failed(reason) => Err(anyhow!(
            "the message to {to} was not delivered: {}",
            output::failure_text(reason)
        )),
        _ => say(&format!("sent to {to}: {id}")),
    }
}

/// `text`, or standard input if it is `-`.
pub(crate) fn text_or_stdin(text: &str) -> Result<String> {
    if text == "-" {
        read_stdin()
    } else {
        Ok(text.to_owned())
    }
}

/// Reads a message from stdin, without its final line break.
fn read_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_TEXT_BYTES as u64 + 2)
        .read_to_string(&mut text)
        .context("reading the message from standard input")?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// Where our message `id` to `contact` stands.
async fn message_status(
    client: &Client,
    contact: &Contact,
    id: MessageId,
) -> Result<MessageStatus> {
    let history = client.history(contact.member_id).await?;
    history
        .iter()
        .rev()
        .find(|message| message.id == id)
        .map(|message| message.status)
        .ok_or_else(|| anyhow!("the message is missing from the history"))
}

async fn sync(home: &Home, wait: Duration, as_json: bool) -> Result<()> {
    let client = open(home).await?;
    let contacts = client.contacts().await?;
    let mut names = Names::new(client.member_id(), client.display_name(), &contacts);
    for circle in client.circles().await? {
        names.add_circle(&circle);
    }
    // Our own subscription, so items show as they arrive and none is lost
    // if the sync ends with an error.
    let mut events = client.events();
    let mut task = tokio::spawn({
        let client = client.clone();
        async move { client.sync(wait).await }
    });
    let mut shown = 0usize;
    let joined = loop {
        tokio::select! {
            Some(event) = events.recv() => shown += show(&event, &mut names, as_json)?,
            joined = &mut task => break joined,
        }
    };
    while let Some(event) = events.try_recv() {
        shown += show(&event, &mut names, as_json)?;
    }
    client.close().await;
    joined
        .map_err(|_| anyhow!("the sync stopped unexpectedly"))?
        .context("syncing")?;
    if shown == 0 && !as_json {
        say("Nothing new.")?;
    }
    Ok(())
}

/// Prints one event of a sync; returns how many items it printed.
fn show(event: &Event, names: &mut Names, as_json: bool) -> Result<usize> {
    match event {
        Event::ContactAdded(contact) => names.add(contact),
        Event::CircleChanged(circle) => names.add_circle(circle),
        _ => {}
    }
    match output::event_line(event, names, as_json) {
        Some(line) => say(&line).map(|()| 1),
        None => Ok(0),
    }
}

async fn history(home: &Home, member: &str, as_json: bool) -> Result<()> {
    let client = open(home).await?;
    let contact = find(&client, member).await?;
    let messages = client.history(contact.member_id).await?;
    let names = Names::new(
        client.member_id(),
        client.display_name(),
        std::slice::from_ref(&contact),
    );
    if messages.is_empty() && !as_json {
        say(&format!("No messages with {} yet.", label(&contact)))?;
    }
    for message in &messages {
        if as_json {
            say(&output::message_json(message, &names))?;
        } else {
            say(&output::message_text(message, &names))?;
        }
    }
    Ok(())
}
