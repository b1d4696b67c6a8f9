//! Property: under any interleaving of sends, deliveries out of order, drops
//! and re-deliveries, every delivered message decrypts exactly once to what
//! was sent, and every re-delivery is an error that changes nothing.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone, Copy)]
enum Op {
    Send { by_alice: bool },
    Deliver { to_alice: bool, pick: usize },
    Redeliver { to_alice: bool, pick: usize },
    Drop { to_alice: bool, pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|by_alice| Op::Send { by_alice }),
        4 => (any::<bool>(), any::<usize>()).prop_map(|(to_alice, pick)| Op::Deliver { to_alice, pick }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_alice, pick)| Op::Redeliver { to_alice, pick }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_alice, pick)| Op::Drop { to_alice, pick }),
    ]
}

/// One party: its session, messages on their way to it, and those it read.
struct Party {
    session: RatchetSession,
    in_flight: Vec<(Vec<u8>, RatchetMessage)>,
    delivered: Vec<RatchetMessage>,
}

impl Party {
    fn new(session: RatchetSession) -> Self {
        Self {
            session,
            in_flight: Vec::new(),
            delivered: Vec::new(),
        }
    }

    fn deliver(&mut self, pick: usize, rng: &mut StdRng) {
        if self.in_flight.is_empty() {
            return;
        }
        let (expected, message) = self.in_flight.remove(pick % self.in_flight.len());
        let plaintext = self.session.decrypt(&message, rng).unwrap();
        assert_eq!(*plaintext, expected);
        self.delivered.push(message);
    }

    fn redeliver(&mut self, pick: usize) {
        if self.delivered.is_empty() {
            return;
        }
        let message = self.delivered[pick % self.delivered.len()].clone();
        let key = message.header.ratchet_key;
        let known_chain = self.session.remote_key == Some(key)
            || self.session.previous_remote_keys.contains(&key);
        // Beyond the remembered chains, the key looks new: the DH step fails
        // to authenticate instead.
        let expected = if known_chain {
            DecryptError::Duplicate
        } else {
            DecryptError::AuthFail
        };
        assert_rejected(&mut self.session, &message, expected);
    }
}

fn run(ops: &[Op]) {
    let (alice, bob) = pair();
    let (mut alice, mut bob) = (Party::new(alice), Party::new(bob));
    let mut rng = StdRng::seed_from_u64(1);
    let mut counter = 0u32;
    for op in ops {
        match *op {
            Op::Send { by_alice } => {
                let (from, to) = if by_alice {
                    (&mut alice, &mut bob)
                } else {
                    (&mut bob, &mut alice)
                };
                if from.session.can_send() {
                    counter += 1;
                    let plaintext = counter.to_be_bytes().to_vec();
                    let message = from.session.encrypt(&plaintext).unwrap();
                    to.in_flight.push((plaintext, message));
                }
            }
            Op::Deliver { to_alice, pick } => {
                if to_alice {
                    alice.deliver(pick, &mut rng)
                } else {
                    bob.deliver(pick, &mut rng)
                }
            }
            Op::Redeliver { to_alice, pick } => {
                if to_alice {
                    alice.redeliver(pick)
                } else {
                    bob.redeliver(pick)
                }
            }
            Op::Drop { to_alice, pick } => {
                let party = if to_alice { &mut alice } else { &mut bob };
                if !party.in_flight.is_empty() {
                    let len = party.in_flight.len();
                    party.in_flight.remove(pick % len);
                }
            }
        }
    }
    // Late deliveries of everything still in flight all succeed.
    for party in [&mut alice, &mut bob] {
        while !party.in_flight.is_empty() {
            party.deliver(0, &mut rng);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_delivered_message_decrypts_exactly_once(ops in proptest::collection::vec(op(), 0..150)) {
        run(&ops);
    }

    #[test]
    fn stored_state_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = RatchetSession::from_bytes(&bytes);
    }

    #[test]
    fn stored_state_survives_any_single_byte_change(index in any::<usize>(), byte in any::<u8>()) {
        let (mut alice, mut bob) = pair();
        bob.decrypt(&send(&mut alice, 3)[2], &mut rng()).unwrap();
        let mut bytes = bob.to_bytes().to_vec();
        let len = bytes.len();
        bytes[index % len] = byte;
        if let Ok(session) = RatchetSession::from_bytes(&bytes) {
            prop_assert_eq!(&*session.to_bytes(), bytes.as_slice());
        }
    }
}
