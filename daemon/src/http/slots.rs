//! Connection slots: `max_connections` in all, at most
//! `max_connections_per_ip` per client address, taken at accept before a
//! byte is read (the control socket's slots per user, keyed by address).
//!
//! The key is the TCP peer: an IPv4 address (an IPv4-mapped IPv6 peer of a
//! dual-stack listener counts as its IPv4 address), or for IPv6 the /64,
//! as the rate limiter counts it: a subscriber line gets a whole /64, so
//! one host could otherwise open a fresh address per connection. A
//! `trusted_proxies` peer is exempt from the per-address cap: every client
//! behind the proxy comes from it (the proxy bounds its clients itself).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::rate;

/// Why a connection got no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Full {
    /// All `max_connections` are held.
    All,
    /// This address (its key) holds `max_connections_per_ip`.
    Address(IpAddr),
}

pub(super) struct Slots {
    limit: usize,
    per_ip: usize,
    trusted: Vec<IpAddr>,
    /// Held in all, and per address key (exempt peers are not in the map).
    held: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One slot, given back when dropped.
pub(super) struct Slot {
    slots: Arc<Slots>,
    key: Option<IpAddr>,
}

impl Slots {
    pub(super) fn new(limit: usize, per_ip: usize, trusted: &[IpAddr]) -> Self {
        Self {
            limit: limit.max(1),
            per_ip: per_ip.max(1),
            trusted: trusted.iter().map(|ip| ip.to_canonical()).collect(),
            held: Mutex::new((0, HashMap::new())),
        }
    }

    /// A slot for a connection from `peer`, if one is free to it.
    pub(super) fn take(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Full> {
        let peer = peer.to_canonical();
        let key = (!self.trusted.contains(&peer)).then(|| rate::bucket_key(peer));
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_key) = &mut *held;
        if *total >= self.limit {
            return Err(Full::All);
        }
        if let Some(key) = key {
            let mine = per_key.entry(key).or_insert(0);
            if *mine >= self.per_ip {
                return Err(Full::Address(key));
            }
            *mine += 1;
        }
        *total += 1;
        Ok(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_key) = &mut *held;
        *total = total.saturating_sub(1);
        if let Some(key) = self.key {
            if let Some(n) = per_key.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per_key.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn one_address_holds_at_most_its_share_and_gets_it_back() {
        let s = Arc::new(Slots::new(4, 2, &[ip("10.0.0.1")]));
        let a = [s.take(ip("192.0.2.1")), s.take(ip("::ffff:192.0.2.1"))];
        assert!(a.iter().all(Result::is_ok));
        // The mapped form is the same client.
        assert_eq!(
            s.take(ip("192.0.2.1")).err(),
            Some(Full::Address(ip("192.0.2.1")))
        );
        let b = s.take(ip("192.0.2.2")).expect("another address");
        drop(a);
        let again = s.take(ip("192.0.2.1")).expect("released");
        drop((b, again));
        assert!(s.held.lock().expect("lock").1.is_empty());
    }

    #[test]
    fn ipv6_is_counted_per_64_and_trusted_proxies_only_by_the_total() {
        let s = Arc::new(Slots::new(5, 1, &[ip("10.0.0.1")]));
        let _a = s.take(ip("2001:db8:1:2::1")).expect("first");
        assert_eq!(
            s.take(ip("2001:db8:1:2::ffff")).err(),
            Some(Full::Address(ip("2001:db8:1:2::")))
        );
        let _b = s.take(ip("2001:db8:1:3::1")).expect("another /64");
        let proxy: Vec<_> = (0..3).map(|_| s.take(ip("10.0.0.1"))).collect();
        assert!(proxy.iter().all(Result::is_ok), "the proxy is exempt");
        assert_eq!(s.take(ip("10.0.0.1")).err(), Some(Full::All));
        assert_eq!(s.take(ip("192.0.2.9")).err(), Some(Full::All));
    }
}
