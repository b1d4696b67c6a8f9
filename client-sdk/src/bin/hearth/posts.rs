//! What members post to a circle (`say`, `checkin`, `share`, `gather`,
//! `rsvp`, `goal`, `support`, `react`) and what they read back (`feed`,
//! `due`).

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use hearth_client::circles::feed::GoalView;
use hearth_client::circles::{Circle, CircleId};
use hearth_client::{
    Cadence, CheckIn, Client, Content, Event, Gathering, GatheringKind, Goal, GoalProgress,
    MessageId, Reaction, Resource, Rsvp, RsvpAnswer,
};

use crate::args::{
    Answer, CheckinArgs, Every, GatherArgs, GatheringKindArg, GoalCommand, Note, ShareArgs,
};
use crate::circle::{find, member_label};
use crate::commands::{open, say, text_or_stdin};
use crate::home::{Home, UsageError};
use crate::output;
use crate::output::circles::{goal_json, goal_text, message_json, message_text, name_or_id};
use crate::when;

/// Posts `content` to the circle `query` names and prints where it stands,
/// then its id (the last line).
async fn post(home: &Home, query: &str, what: &str, content: Content) -> Result<()> {
    let client = open(home).await?;
    let posted = post_with(&client, query, what, content).await;
    client.close().await;
    posted
}

async fn post_with(client: &Client, query: &str, what: &str, content: Content) -> Result<()> {
    let circle = find(client, query).await?;
    let mut events = client.events();
    let id = match client.post(circle.id, content).await {
        Ok(id) => id,
        Err(hearth_client::Error::InvalidContent(reason)) => {
            return Err(UsageError(format!("{what} is not valid: {reason}")).into());
        }
        Err(error) => {
            return Err(error).with_context(|| format!("posting to {}", name_or_id(&circle)));
        }
    };
    // Members whose relay refused it for good (the others have it, or get
    // it on a later sync).
    let refused: Vec<String> = std::iter::from_fn(|| events.try_recv())
        .filter_map(|event| match event {
            Event::DeliveryFailed {
                to,
                id: failed,
                reason,
                will_retry: false,
            } if failed == id => Some(format!(
                "{} ({})",
                member_label(&circle, to),
                output::failure_text(reason)
            )),
            _ => None,
        })
        .collect();
    let name = name_or_id(&circle);
    if client.queued().await? > 0 {
        say(&format!(
            "Queued {what} for {name} (the relay can't be reached right now); `hearth sync` sends it:"
        ))?;
    } else if refused.is_empty() {
        say(&format!("Sent {what} to {name}:"))?;
    } else {
        say(&format!(
            "Sent {what} to {name}, but not to {}:",
            refused.join(", ")
        ))?;
    }
    say(&id.to_string())
}

/// `hearth say CIRCLE TEXT`.
pub(crate) async fn say_text(home: &Home, circle: &str, text: &str) -> Result<()> {
    let text = text_or_stdin(text)?;
    if text.is_empty() {
        return Err(UsageError("the message is empty".into()).into());
    }
    post(home, circle, "your message", Content::Text(text)).await
}

/// `hearth checkin`.
pub(crate) async fn checkin(home: &Home, args: CheckinArgs) -> Result<()> {
    let check_in = CheckIn {
        mood: args.mood,
        energy: args.energy,
        note: text_or_stdin(&args.note.text)?,
        tags: args.tags.into_iter().filter(|t| !t.is_empty()).collect(),
    };
    post(
        home,
        &args.circle,
        "your check-in",
        Content::CheckIn(check_in),
    )
    .await
}

/// `hearth share`.
pub(crate) async fn share(home: &Home, args: ShareArgs) -> Result<()> {
    let resource = Resource {
        url: args.url,
        title: args.title,
        note: text_or_stdin(&args.note.text)?,
    };
    post(home, &args.circle, "your link", Content::Resource(resource)).await
}

/// `hearth gather`.
pub(crate) async fn gather(home: &Home, args: GatherArgs) -> Result<()> {
    let at = when::parse_moment(&args.at, args.tz.as_deref())?;
    let is_web = args.link.starts_with("https://") || args.link.starts_with("http://");
    let kind = match args.kind {
        Some(GatheringKindArg::Video) => GatheringKind::VideoCall,
        Some(GatheringKindArg::Coffee) => GatheringKind::CoffeeChat,
        None if is_web => GatheringKind::VideoCall,
        None => GatheringKind::CoffeeChat,
    };
    let gathering = Gathering {
        kind,
        starts_at_ms: at.ms,
        time_zone: at.zone,
        duration_minutes: args.minutes,
        link: args.link,
        note: text_or_stdin(&args.note.text)?,
    };
    post(
        home,
        &args.circle,
        "your proposal",
        Content::Gathering(gathering),
    )
    .await
}

/// `hearth rsvp`.
pub(crate) async fn rsvp(
    home: &Home,
    circle: &str,
    gathering: MessageId,
    answer: Answer,
) -> Result<()> {
    let answer = match answer {
        Answer::Yes => RsvpAnswer::Yes,
        Answer::No => RsvpAnswer::No,
        Answer::Maybe => RsvpAnswer::Maybe,
    };
    let rsvp = Rsvp { gathering, answer };
    post(home, circle, "your answer", Content::Rsvp(rsvp)).await
}

/// `hearth goal add | progress`.
pub(crate) async fn goal(home: &Home, command: GoalCommand) -> Result<()> {
    match command {
        GoalCommand::Add {
            circle,
            text,
            every,
            due,
        } => {
            let text = text_or_stdin(&text)?;
            if text.is_empty() {
                return Err(UsageError("the goal is empty".into()).into());
            }
            let cadence = match every {
                Some(Every::Daily) => Cadence::Daily,
                Some(Every::Weekly) => Cadence::Weekly,
                None => Cadence::Once,
            };
            let due_at_ms = due.as_deref().map(when::parse_instant).transpose()?;
            let goal = Goal {
                text,
                cadence,
                due_at_ms,
            };
            post(home, &circle, "your goal", Content::Goal(goal)).await
        }
        GoalCommand::Progress {
            circle,
            goal,
            note,
            done,
        } => {
            let progress = GoalProgress {
                goal,
                note: text_or_stdin(&note.text)?,
                done,
            };
            post(
                home,
                &circle,
                "your progress",
                Content::GoalProgress(progress),
            )
            .await
        }
    }
}

/// `hearth support`.
pub(crate) async fn support(home: &Home, circle: &str, note: &Note) -> Result<()> {
    let note = text_or_stdin(&note.text)?;
    post(
        home,
        circle,
        "your request for support",
        Content::SupportRequest { note },
    )
    .await
}

/// `hearth react`.
pub(crate) async fn react(
    home: &Home,
    circle: &str,
    target: MessageId,
    emoji: String,
) -> Result<()> {
    let reaction = Reaction { target, emoji };
    post(home, circle, "your reaction", Content::Reaction(reaction)).await
}

/// `hearth feed CIRCLE`.
pub(crate) async fn feed(home: &Home, query: &str, as_json: bool) -> Result<()> {
    let client = open(home).await?;
    let circle = find(&client, query).await;
    let messages = match &circle {
        Ok(circle) => client.feed(circle.id).await.context("reading the feed"),
        Err(_) => Ok(Vec::new()),
    };
    client.close().await;
    let circle = circle?;
    let messages = messages?;
    if messages.is_empty() && !as_json {
        return say(&format!("Nothing in {} yet.", name_or_id(&circle)));
    }
    for message in &messages {
        if as_json {
            say(&message_json(message, &circle.name))?;
        } else {
            say(&message_text(message, None))?;
        }
    }
    Ok(())
}

/// `hearth due`: goals whose owner is due or overdue, as of `at` (RFC
/// 3339) or now.
pub(crate) async fn due(home: &Home, at: Option<&str>, as_json: bool) -> Result<()> {
    let now = match at {
        Some(at) => when::parse_instant(at)?,
        None => when::now_ms(),
    };
    let client = open(home).await?;
    let listed = due_with(&client, now).await;
    client.close().await;
    let (goals, circles) = listed?;
    if goals.is_empty() && !as_json {
        return say("Nobody is due for a check-in.");
    }
    for (circle, goal) in &goals {
        let name = circles.get(circle).map_or("", String::as_str);
        if as_json {
            say(&goal_json(*circle, name, goal))?;
        } else {
            say(&goal_text(name, goal))?;
        }
    }
    Ok(())
}

/// Goals due as of `now`, and the names of the circles.
async fn due_with(
    client: &Client,
    now: u64,
) -> Result<(Vec<(CircleId, GoalView)>, HashMap<CircleId, String>)> {
    let goals = client.due_at(now).await.context("reading the goals")?;
    let circles = client
        .circles()
        .await?
        .into_iter()
        .map(|circle: Circle| (circle.id, circle.name))
        .collect();
    Ok((goals, circles))
}
