//! Request handling in the relay core: arbitrary frames from two connections,
//! commits applied to the in-memory store (and loads read from it, as the
//! shell does), then a restart from the store that loads every mailbox.
//! Nothing may panic, and a restart must see exactly what was committed.
#![no_main]

use hearth_proto::relay as pb;
use hearth_protocol::frame;
use hearth_relay::core::{Commit, CoreConfig, Outcome, RegistrationMode, RelayCore, Reply};
use hearth_relay::store::memory::MemoryStore;
use hearth_relay::store::{MailboxStore, Snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = CoreConfig {
        registration: RegistrationMode::Open,
        ..CoreConfig::default()
    };
    let mut core = RelayCore::new(config.clone(), Snapshot::default());
    let store = MemoryStore::default();
    let conns = [
        core.handle_connect([1; 32], [2; 32], 0),
        core.handle_connect([3; 32], [4; 32], 0),
    ];
    let mut rest = data;
    let mut now = 0u64;
    while let Some((&selector, tail)) = rest.split_first() {
        let conn = conns[usize::from(selector & 1)];
        now += u64::from(selector >> 1) * 1000;
        let Ok((payload, used)) = frame::decode(tail, config.max_frame_bytes) else {
            break;
        };
        rest = &tail[used..];
        let request = match <pb::Request as prost::Message>::decode(payload) {
            Ok(request) => request,
            Err(_) => {
                let _ = core.handle_bad_frame(conn, &frame::FrameError::BadMessage);
                continue;
            }
        };
        let mut outcome = core.handle_request(conn, request, now);
        // The core asks for a load at most once per request.
        if let Outcome::Load {
            mailboxes,
            send_record,
            request,
        } = outcome
        {
            let loaded = store
                .load_needed(&mailboxes, send_record)
                .expect("memory store loads");
            if let Some(commit) = core.handle_loaded(loaded, now) {
                apply(&store, &mut core, commit);
            }
            outcome = core.handle_request(conn, request, now);
        }
        match outcome {
            Outcome::Reply(_) => {}
            Outcome::Load { .. } => panic!("a second load for one request"),
            Outcome::Commit(commit) => {
                if let Reply::Prekeys(plan) = &commit.reply {
                    let _ = plan.response(None, None, None);
                }
                apply(&store, &mut core, commit);
            }
        }
        while core.poll_delivery(conns[0]).is_some() || core.poll_delivery(conns[1]).is_some() {}
        if let Some(commit) = core.poll_expired(now) {
            apply(&store, &mut core, commit);
        }
    }
    // Expired envelopes are gone from both sides at `now`: swept here, and
    // dropped as they load after the restart.
    while let Some(commit) = core.poll_expired(now) {
        apply(&store, &mut core, commit);
    }
    // Everything loaded before and after, to compare.
    let snapshot = store.load().expect("memory store loads");
    let all: Vec<_> = snapshot.mailboxes.iter().map(|(id, _)| *id).collect();
    let load_all = |core: &mut RelayCore| {
        let loaded = store.load_needed(&all, None).expect("memory store loads");
        // Expired envelopes go as they load: the same in both.
        if let Some(commit) = core.handle_loaded(loaded, now) {
            apply(&store, core, commit);
        }
    };
    load_all(&mut core);
    let stats = core.stats();
    let mut restarted = RelayCore::new(config, store.load().expect("memory store loads"));
    load_all(&mut restarted);
    let after = restarted.stats();
    assert_eq!(
        (stats.mailboxes, stats.envelopes, stats.bodies),
        (after.mailboxes, after.envelopes, after.bodies)
    );
});

/// Commits like the shell: to the store, then reported to the core.
fn apply(store: &MemoryStore, core: &mut RelayCore, commit: Commit) {
    store
        .commit(std::slice::from_ref(&commit.batch))
        .expect("memory store commits");
    core.handle_committed(commit.ticket);
}
