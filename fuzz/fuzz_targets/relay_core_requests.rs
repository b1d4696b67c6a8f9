//! Request handling in the relay core: arbitrary frames from two connections,
//! commits applied to the in-memory store, then a restart from the store.
//! Nothing may panic, and a restart must see exactly what was committed.
#![no_main]

use hearth_proto::relay as pb;
use hearth_protocol::frame;
use hearth_relay::core::{CoreConfig, Outcome, RegistrationMode, RelayCore, Reply};
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
        match core.handle_request(conn, request, now) {
            Outcome::Reply(_) => {}
            Outcome::Commit(commit) => {
                if let Reply::Prekeys(plan) = &commit.reply {
                    let _ = plan.response(None, None, None);
                }
                store
                    .commit(std::slice::from_ref(&commit.batch))
                    .expect("memory store commits");
                core.handle_committed(commit.ticket);
            }
        }
        while core.poll_delivery(conns[0]).is_some() || core.poll_delivery(conns[1]).is_some() {}
        if let Some(commit) = core.poll_expired(now) {
            store
                .commit(std::slice::from_ref(&commit.batch))
                .expect("memory store commits");
            core.handle_committed(commit.ticket);
        }
    }
    let stats = core.stats();
    let restarted = RelayCore::new(config, store.load().expect("memory store loads"));
    let after = restarted.stats();
    assert_eq!(
        (stats.mailboxes, stats.envelopes, stats.bodies),
        (after.mailboxes, after.envelopes, after.bodies)
    );
});
