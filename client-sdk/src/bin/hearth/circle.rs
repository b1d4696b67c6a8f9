//! `hearth circle ...`: circles and their rosters.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use hearth_client::circles::{Circle, Role};
use hearth_client::{Client, MemberId};

use crate::args::CircleCommand;
use crate::commands::{open, say, text_or_stdin};
use crate::home::{Home, UsageError};
use crate::output::circles::{circle_json, circle_text, member_json, member_text, name_or_id};
use crate::output::clean;
use crate::when;

/// Runs `hearth circle COMMAND`.
pub(crate) async fn run(home: &Home, command: CircleCommand) -> Result<()> {
    let client = open(home).await?;
    let done = match command {
        CircleCommand::Create { name } => create(&client, &name).await,
        CircleCommand::Invite { circle, expires } => invite(&client, &circle, expires).await,
        CircleCommand::Join { link } => join(&client, &link).await,
        CircleCommand::List { json } => list(&client, json).await,
        CircleCommand::Members { circle, json } => members(&client, &circle, json).await,
        CircleCommand::Remove { circle, member } => remove(&client, &circle, &member).await,
        CircleCommand::Leave { circle } => leave(&client, &circle).await,
        CircleCommand::Promote { circle, member } => {
            set_role(&client, &circle, &member, Role::Facilitator).await
        }
        CircleCommand::Demote { circle, member } => {
            set_role(&client, &circle, &member, Role::Member).await
        }
        CircleCommand::Rename { circle, name } => rename(&client, &circle, &name).await,
        CircleCommand::Rules { circle, rules } => set_rules(&client, &circle, &rules).await,
        CircleCommand::Sub {
            circle,
            name,
            members,
        } => sub(&client, &circle, &name, &members).await,
    };
    client.close().await;
    done
}

/// The circle `query` names (an id, or a name only one circle has).
pub(crate) async fn find(client: &Client, query: &str) -> Result<Circle> {
    client
        .find_circle(query)
        .await
        .with_context(|| format!("finding the circle {:?}", clean(query)))
}

/// The member of `circle` that `query` names: a member id, or a name only
/// one member has (ignoring case).
fn member_in(circle: &Circle, query: &str) -> Result<MemberId> {
    if let Ok(id) = query.trim().parse::<MemberId>() {
        if circle.members.iter().any(|m| m.member_id == id) {
            return Ok(id);
        }
        bail!("{id} is not a member of {}", name_or_id(circle));
    }
    let wanted = query.trim().to_lowercase();
    let mut named = circle
        .members
        .iter()
        .filter(|m| !m.display_name.is_empty() && m.display_name.to_lowercase() == wanted);
    match (named.next(), named.next()) {
        (Some(member), None) => Ok(member.member_id),
        (Some(_), Some(_)) => bail!(
            "several members of {} are called {:?}; use the member id",
            name_or_id(circle),
            clean(query)
        ),
        _ => bail!(
            "no member of {} is called {:?}",
            name_or_id(circle),
            clean(query)
        ),
    }
}

/// What to call `member` of `circle` in text: their name, or their
/// member id.
pub(crate) fn member_label(circle: &Circle, member: MemberId) -> String {
    circle
        .members
        .iter()
        .find(|m| m.member_id == member && !m.display_name.is_empty())
        .map_or_else(|| member.to_string(), |m| clean(&m.display_name))
}

/// Tells whether what a command queued has left already.
async fn sent_or_queued(client: &Client, what: &str) -> Result<()> {
    if client.queued().await? == 0 {
        say(&format!("{what} sent."))
    } else {
        say(&format!(
            "{what} queued (the relay can't be reached right now); `hearth sync` sends it."
        ))
    }
}

async fn create(client: &Client, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(UsageError("the circle's name is empty".into()).into());
    }
    let circle = client
        .create_circle(name)
        .await
        .context("creating the circle")?;
    say(&format!(
        "Created {}; you facilitate it. Invite members with: hearth circle invite {}",
        name_or_id(&circle),
        circle.id
    ))?;
    say("Its circle id:")?;
    say(&circle.id.to_string())
}

async fn invite(client: &Client, query: &str, expires: Duration) -> Result<()> {
    let circle = find(client, query).await?;
    let link = client
        .circle_invite(circle.id, expires)
        .await
        .with_context(|| format!("inviting to {}", name_or_id(&circle)))?;
    let until = when::now_ms().saturating_add(u64::try_from(expires.as_millis()).unwrap_or(0));
    say(&format!(
        "Give this link to one person; it works once, until {}:",
        when::utc_seconds(until)
    ))?;
    say(&link)
}

async fn join(client: &Client, link: &str) -> Result<()> {
    let id = client
        .join_circle(link.trim())
        .await
        .context("joining the circle")?;
    let circle = find(client, &id.to_string()).await?;
    say(&format!(
        "Asked to join {}. You are in once a facilitator's device welcomes you; `hearth sync` shows it.",
        name_or_id(&circle)
    ))?;
    sent_or_queued(client, "Your request was").await?;
    say("The circle id:")?;
    say(&id.to_string())
}

async fn list(client: &Client, as_json: bool) -> Result<()> {
    let circles = client.circles().await?;
    if circles.is_empty() && !as_json {
        return say("No circles yet (hearth circle create NAME / hearth circle join LINK).");
    }
    for circle in &circles {
        if as_json {
            say(&circle_json(circle, "circle"))?;
        } else {
            say(&circle_text(circle))?;
        }
    }
    Ok(())
}

async fn members(client: &Client, query: &str, as_json: bool) -> Result<()> {
    let circle = find(client, query).await?;
    if circle.members.is_empty() && !as_json {
        return say(&format!(
            "No members known yet: {} ({}).",
            name_or_id(&circle),
            circle.state.as_str()
        ));
    }
    for member in &circle.members {
        if as_json {
            say(&member_json(circle.id, member))?;
        } else {
            say(&member_text(member))?;
        }
    }
    Ok(())
}

async fn remove(client: &Client, query: &str, member: &str) -> Result<()> {
    let circle = find(client, query).await?;
    let member = member_in(&circle, member)?;
    let who = member_label(&circle, member);
    client
        .remove_member(circle.id, member)
        .await
        .with_context(|| format!("removing {who} from {}", name_or_id(&circle)))?;
    say(&format!(
        "Removed {who} from {}: they can read nothing sent from now on.",
        name_or_id(&circle)
    ))?;
    sent_or_queued(client, "The new roster was").await
}

async fn leave(client: &Client, query: &str) -> Result<()> {
    let circle = find(client, query).await?;
    client
        .leave_circle(circle.id)
        .await
        .with_context(|| format!("leaving {}", name_or_id(&circle)))?;
    say(&format!("You left {}.", name_or_id(&circle)))?;
    sent_or_queued(client, "Your goodbye was").await
}

async fn set_role(client: &Client, query: &str, member: &str, role: Role) -> Result<()> {
    let circle = find(client, query).await?;
    let member = member_in(&circle, member)?;
    let who = member_label(&circle, member);
    client
        .set_role(circle.id, member, role)
        .await
        .with_context(|| format!("making {who} a {role} of {}", name_or_id(&circle)))?;
    match role {
        Role::Facilitator => say(&format!("{who} now facilitates {}.", name_or_id(&circle)))?,
        Role::Member => say(&format!(
            "{who} is now a member of {} (not a facilitator).",
            name_or_id(&circle)
        ))?,
    }
    sent_or_queued(client, "The new roster was").await
}

async fn rename(client: &Client, query: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(UsageError("the circle's name is empty".into()).into());
    }
    let circle = find(client, query).await?;
    let renamed = client
        .rename_circle(circle.id, name)
        .await
        .with_context(|| format!("renaming {}", name_or_id(&circle)))?;
    say(&format!(
        "{} is now called {}.",
        name_or_id(&circle),
        name_or_id(&renamed)
    ))?;
    sent_or_queued(client, "The new roster was").await
}

async fn set_rules(client: &Client, query: &str, rules: &str) -> Result<()> {
    let rules = text_or_stdin(rules)?;
    let circle = find(client, query).await?;
    client
        .set_circle_rules(circle.id, &rules)
        .await
        .with_context(|| format!("setting the rules of {}", name_or_id(&circle)))?;
    say(&format!("Set the rules of {}.", name_or_id(&circle)))?;
    sent_or_queued(client, "The new roster was").await
}

async fn sub(client: &Client, query: &str, name: &str, members: &[String]) -> Result<()> {
    if name.trim().is_empty() {
        return Err(UsageError("the circle's name is empty".into()).into());
    }
    let parent = find(client, query).await?;
    let own = client.member_id();
    let mut chosen = Vec::new();
    for member in members.iter().filter(|m| !m.trim().is_empty()) {
        let id = member_in(&parent, member)?;
        if id != own && !chosen.contains(&id) {
            chosen.push(id);
        }
    }
    if chosen.is_empty() {
        return Err(UsageError("--members names nobody but you".into()).into());
    }
    let circle = client
        .create_sub_circle(parent.id, name, &chosen)
        .await
        .with_context(|| format!("forming a circle from {}", name_or_id(&parent)))?;
    let names: Vec<String> = chosen.iter().map(|m| member_label(&parent, *m)).collect();
    say(&format!(
        "Formed {} from {} with {}; you facilitate it.",
        name_or_id(&circle),
        name_or_id(&parent),
        names.join(", ")
    ))?;
    sent_or_queued(client, "The welcome was").await?;
    say("Its circle id:")?;
    say(&circle.id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_client::circles::{CircleId, CircleMember, CircleState};

    fn circle() -> Circle {
        let member = |byte: u8, name: &str| CircleMember {
            member_id: MemberId::from_bytes([byte; 16]),
            display_name: name.to_owned(),
            role: Role::Member,
            is_me: false,
        };
        Circle {
            id: CircleId::from_bytes([7; 16]),
            name: "Tuesday group".into(),
            rules: String::new(),
            state: CircleState::Active,
            my_role: Some(Role::Facilitator),
            members: vec![
                member(1, "Dana"),
                member(2, "Sam"),
                member(3, "sam"),
                member(4, ""),
            ],
            epoch: 0,
            version: 1,
            parent: None,
        }
    }

    #[test]
    fn members_are_found_by_id_or_by_a_name_only_one_has() {
        let circle = circle();
        let dana = MemberId::from_bytes([1; 16]);
        assert_eq!(member_in(&circle, "dana").unwrap(), dana);
        assert_eq!(member_in(&circle, &dana.to_string()).unwrap(), dana);
        let twice = member_in(&circle, "SAM").unwrap_err().to_string();
        assert!(twice.contains("use the member id"), "{twice}");
        let nobody = member_in(&circle, "Kim").unwrap_err().to_string();
        assert!(nobody.contains("no member of Tuesday group"), "{nobody}");
        let stranger = MemberId::from_bytes([9; 16]).to_string();
        let outside = member_in(&circle, &stranger).unwrap_err().to_string();
        assert!(outside.contains("is not a member"), "{outside}");
        assert!(
            member_in(&circle, "").is_err(),
            "an empty name finds no one"
        );
    }
}
