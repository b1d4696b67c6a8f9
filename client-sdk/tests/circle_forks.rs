//! Concurrent roster changes through the SDK against a real relay in this
//! process, tried as an attacker would: a demoted facilitator removing the
//! one who demoted them, a leave signed from before a removal, two
//! removals at once; and what members keep: posts sent in good faith under
//! the previous key, and a joiner welcomed on a branch that lost.
//!
//! "Concurrent" here means what it means on phones: each side changes the
//! roster before it has synced the other's change.

use hearth_client::{CircleId, CircleState, Client, Content, MemberId, Role};

mod common;

use common::circles::*;
use common::*;

/// Member ids of the circle as `client` sees it, sorted.
async fn member_ids(client: &Client, id: CircleId) -> Vec<MemberId> {
    let mut ids: Vec<MemberId> = circle(client, id)
        .await
        .members
        .iter()
        .map(|m| m.member_id)
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<MemberId>) -> Vec<MemberId> {
    ids.sort();
    ids
}

/// Every client in `clients` sees the same roster version with these
/// members.
async fn all_agree(clients: &[&Client], id: CircleId, members: &[MemberId]) {
    let expected = sorted(members.to_vec());
    let version = circle(clients[0], id).await.version;
    for client in clients {
        let view = circle(client, id).await;
        assert_eq!(view.state, CircleState::Active);
        assert_eq!(view.version, version, "members disagree on the version");
        assert_eq!(member_ids(client, id).await, expected);
    }
}

async fn say(client: &Client, id: CircleId, text: &str) {
    client.post(id, Content::Text(text.into())).await.unwrap();
}

async fn has_text(client: &Client, id: CircleId, text: &str) -> bool {
    feed_texts(client, id).await.iter().any(|(_, t)| t == text)
}

async fn role_of(client: &Client, id: CircleId, member: MemberId) -> Option<Role> {
    circle(client, id)
        .await
        .members
        .iter()
        .find(|m| m.member_id == member)
        .map(|m| m.role)
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_removals_leave_neither_removed_member_a_key() {
    let group = Group::new(&["Fran", "Gil", "Ana", "Ben", "Cy"]).await;
    let [fran, gil, ana, ben, cy] = [0, 1, 2, 3, 4].map(|i| &group.clients[i]);
    let id = group.circle("Thursday group").await;
    fran.set_role(id, gil.member_id(), Role::Facilitator)
        .await
        .unwrap();
    settle(&group.all()).await;

    // Both facilitators remove someone before seeing the other's change:
    // two versions with the same epoch number.
    fran.remove_member(id, ana.member_id()).await.unwrap();
    gil.remove_member(id, ben.member_id()).await.unwrap();
    settle(&group.all()).await;

    let stay = [fran, gil, cy];
    let ids = [fran.member_id(), gil.member_id(), cy.member_id()];
    all_agree(&stay, id, &ids).await;
    for gone in [ana, ben] {
        assert_eq!(circle(gone, id).await.state, CircleState::Removed);
    }
    say(cy, id, "after both removals").await;
    say(gil, id, "from Gil").await;
    settle(&group.all()).await;
    for gone in [ana, ben] {
        assert!(!has_text(gone, id, "after both removals").await);
        assert!(!has_text(gone, id, "from Gil").await);
    }
    for member in [fran, gil] {
        assert!(has_text(member, id, "after both removals").await);
    }
    assert!(has_text(cy, id, "from Gil").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demoted_facilitator_cannot_take_the_circle_by_a_concurrent_removal() {
    let group = Group::new(&["Fran", "Gil", "Ana"]).await;
    let [fran, gil, ana] = [0, 1, 2].map(|i| &group.clients[i]);
    let id = group.circle("Friday group").await;
    fran.set_role(id, gil.member_id(), Role::Facilitator)
        .await
        .unwrap();
    settle(&group.all()).await;

    fran.set_role(id, gil.member_id(), Role::Member)
        .await
        .unwrap();
    // Gil has not synced the demotion and removes Fran.
    gil.remove_member(id, fran.member_id()).await.unwrap();
    settle(&group.all()).await;

    let ids = [fran.member_id(), gil.member_id(), ana.member_id()];
    all_agree(&group.all(), id, &ids).await;
    for client in group.all() {
        assert_eq!(
            role_of(client, id, fran.member_id()).await,
            Some(Role::Facilitator)
        );
        assert_eq!(
            role_of(client, id, gil.member_id()).await,
            Some(Role::Member)
        );
    }
    say(fran, id, "still here").await;
    settle(&group.all()).await;
    assert!(has_text(gil, id, "still here").await && has_text(ana, id, "still here").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leave_from_before_a_removal_does_not_bring_the_removed_back() {
    let group = Group::new(&["Fran", "Ana", "Ben", "Cy"]).await;
    let [fran, ana, ben, cy] = [0, 1, 2, 3].map(|i| &group.clients[i]);
    let id = group.circle("Morning group").await;

    fran.remove_member(id, ana.member_id()).await.unwrap();
    // Ben leaves from the version that still lists Ana.
    ben.leave_circle(id).await.unwrap();
    settle(&group.all()).await;

    all_agree(&[fran, cy], id, &[fran.member_id(), cy.member_id()]).await;
    assert_eq!(circle(ana, id).await.state, CircleState::Removed);
    assert_eq!(circle(ben, id).await.state, CircleState::Left);
    say(fran, id, "just us").await;
    settle(&group.all()).await;
    assert!(has_text(cy, id, "just us").await);
    assert!(!has_text(ana, id, "just us").await);
    assert!(!has_text(ben, id, "just us").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_sent_before_its_sender_learned_of_a_removal_is_still_read() {
    let group = Group::new(&["Fran", "Ana", "Ben", "Cy"]).await;
    let [fran, ana, ben, cy] = [0, 1, 2, 3].map(|i| &group.clients[i]);
    let id = group.circle("Evening group").await;
    say(ben, id, "warm up").await;
    settle(&group.all()).await;

    fran.remove_member(id, ana.member_id()).await.unwrap();
    // Cy has not synced the removal: the post goes out under the old key.
    say(cy, id, "in good faith").await;
    settle(&group.all()).await;
    for member in [fran, ben] {
        assert!(
            has_text(member, id, "in good faith").await,
            "an acknowledged post was lost"
        );
    }
    say(cy, id, "after the removal").await;
    settle(&group.all()).await;
    assert!(has_text(fran, id, "after the removal").await);
    assert!(!has_text(ana, id, "after the removal").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_joiner_welcomed_on_a_losing_branch_is_brought_in_again() {
    let group = Group::new(&["Fran", "Gil", "Cy", "Dee"]).await;
    let [fran, gil, cy, dee] = [0, 1, 2, 3].map(|i| &group.clients[i]);
    let everyone_but_dee = [fran, gil, cy];
    let id = fran.create_circle("Sunday group").await.unwrap().id;
    for joiner in [gil, cy] {
        join(fran, joiner, id).await;
        settle(&everyone_but_dee).await;
    }
    fran.set_role(id, gil.member_id(), Role::Facilitator)
        .await
        .unwrap();
    settle(&everyone_but_dee).await;

    // Dee joins through Gil's link; Gil accepts while Fran, who has not
    // synced, removes Cy. The removal wins the fork; Gil's device adds Dee
    // again on the new head and welcomes Dee with the history to follow.
    join(gil, dee, id).await;
    sync(gil).await;
    fran.remove_member(id, cy.member_id()).await.unwrap();
    settle(&group.all()).await;

    let ids = [fran.member_id(), gil.member_id(), dee.member_id()];
    all_agree(&[fran, gil, dee], id, &ids).await;
    assert_eq!(circle(cy, id).await.state, CircleState::Removed);
    say(dee, id, "hello from Dee").await;
    say(gil, id, "welcome Dee").await;
    settle(&group.all()).await;
    assert!(has_text(gil, id, "hello from Dee").await);
    assert!(has_text(dee, id, "welcome Dee").await);
    assert!(has_text(fran, id, "welcome Dee").await);
    assert!(!has_text(cy, id, "welcome Dee").await);
    // Fran replaced her door token in the same moment Gil welcomed Dee
    // with her old card; Gil hands Dee the new one and Dee's session chore,
    // retried with backoff, reaches Fran.
    within("Dee's session with Fran", async {
        while !has_text(fran, id, "hello from Dee").await {
            settle(&group.all()).await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    say(fran, id, "hello Dee, from Fran").await;
    settle(&group.all()).await;
    assert!(has_text(dee, id, "hello Dee, from Fran").await);
}
