//! The per-address connection cap: how many connections one client address
//! holds at once.
//!
//! An address is an IPv4 address or an IPv6 /64 (one subscriber usually has
//! a whole /64, so counting single IPv6 addresses would cap nothing). A
//! connection counts once its handshake is done: before that its source
//! address is unproven, and counting it would let anyone who spoofs an
//! address use up that address's slots.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// Connections held per client address, up to a limit.
#[derive(Debug)]
pub(super) struct AddressSlots {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place under the cap of its address; released on drop.
#[derive(Debug)]
pub(super) struct AddressSlot {
    slots: Arc<AddressSlots>,
    address: IpAddr,
}

impl AddressSlots {
    /// At most `limit` connections per address.
    pub(super) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or `None` when its address holds
    /// the limit already.
    pub(super) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let address = address_of(ip);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(address).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            slots: Arc::clone(self),
            address,
        })
    }

    /// Connections held by the address of `ip`.
    #[cfg(test)]
    pub(super) fn held(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&address_of(ip)).copied().unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.address);
            }
        }
    }
}

/// The address a connection from `ip` counts against: the IPv4 address
/// (also when written as IPv4-mapped IPv6), or the IPv6 /64.
fn address_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = v6.to_bits() & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from_bits(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_limit_holds_per_address_and_frees_on_drop() {
        let slots = AddressSlots::new(2);
        let first = slots.try_acquire(ip("192.0.2.1")).unwrap();
        let _second = slots.try_acquire(ip("192.0.2.1")).unwrap();
        assert!(slots.try_acquire(ip("192.0.2.1")).is_none());
        let _other = slots.try_acquire(ip("192.0.2.2")).unwrap();
        drop(first);
        assert_eq!(slots.held(ip("192.0.2.1")), 1);
        assert!(slots.try_acquire(ip("192.0.2.1")).is_some());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let slots = AddressSlots::new(1);
        let _a = slots.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        assert!(
            slots.try_acquire(ip("2001:db8:1:2:ffff::9")).is_none(),
            "same /64"
        );
        assert!(slots.try_acquire(ip("2001:db8:1:3::1")).is_some());
        let _v4 = slots.try_acquire(ip("198.51.100.7")).unwrap();
        assert!(slots.try_acquire(ip("::ffff:198.51.100.7")).is_none());
    }

    #[test]
    fn released_addresses_leave_no_entry() {
        let slots = AddressSlots::new(3);
        let held: Vec<_> = (1..=3)
            .map(|n| slots.try_acquire(ip(&format!("203.0.113.{n}"))).unwrap())
            .collect();
        drop(held);
        let map = slots.held.lock().unwrap();
        assert!(map.is_empty());
    }
}
