//! Who a request is from, and how many it may make.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

use hyper::HeaderMap;

/// Client addresses remembered at once; beyond this, those whose bucket
/// is full again are forgotten, and if that frees nothing, all are (a
/// flood from very many addresses then meets fresh buckets, never an
/// unbounded map).
const MAX_CLIENTS: usize = 65_536;

/// The address a request counts against: the peer, or, when the peer is
/// a trusted proxy, the nearest address in `X-Forwarded-For` that is not
/// one of ours (the header's left part is whatever the client wrote).
pub(super) fn client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    // On a dual-stack listener an IPv4 peer is `::ffff:a.b.c.d`; the
    // trusted list names it `a.b.c.d`.
    let peer = peer.to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut client = peer;
    let values = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let hops: Vec<&str> = values.flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if trusted.contains(&ip) => client = ip,
            Ok(ip) => return ip,
            // A hop we cannot read: trust nothing further left.
            Err(_) => return client,
        }
    }
    client
}

/// IPv6 clients are counted per /64: one subscriber line has a whole /64.
pub(super) fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// A token bucket per client address: `per_minute` requests at once, then
/// one every `60 / per_minute` seconds.
pub(super) struct Limiter {
    per_minute: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl Limiter {
    pub(super) fn new(per_minute: u32) -> Self {
        Self {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` has used up its allowance of refused requests. Only
    /// refusals are charged ([`Limiter::charge`]): a mail provider that
    /// sends many genuine one-clicks from one address is never held back,
    /// a client that guesses tokens soon is (and then for everything).
    pub(super) fn exhausted(&self, ip: IpAddr) -> bool {
        self.with_bucket(ip, Instant::now(), |tokens| *tokens < 1.0)
    }

    /// Charges one refused request to `ip`.
    pub(super) fn charge(&self, ip: IpAddr) {
        self.with_bucket(ip, Instant::now(), |tokens| {
            *tokens = (*tokens - 1.0).max(0.0);
        });
    }

    /// Takes one request from `ip`'s allowance; `false`: none left.
    #[cfg(test)]
    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        self.with_bucket(ip, now, |tokens| {
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                true
            } else {
                false
            }
        })
    }

    /// `f` on `ip`'s bucket, refilled up to `now`.
    fn with_bucket<T>(&self, ip: IpAddr, now: Instant, f: impl FnOnce(&mut f64) -> T) -> T {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS {
            let full = self.per_minute;
            let rate = full / 60.0;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < full
            });
            if buckets.len() >= MAX_CLIENTS {
                buckets.clear();
            }
        }
        let (tokens, at) = buckets
            .entry(bucket_key(ip))
            .or_insert((self.per_minute, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * self.per_minute / 60.0;
        *tokens = (*tokens + refill).min(self.per_minute);
        *at = now;
        f(tokens)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().expect("header"));
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        let h = xff("198.51.100.7, 203.0.113.9");
        assert_eq!(client(ip("192.0.2.1"), &h, &[proxy]), ip("192.0.2.1"));
        assert_eq!(client(proxy, &h, &[proxy]), ip("203.0.113.9"));
        // A chain of our own proxies is walked through; a forged left part is not reached.
        let two = [proxy, ip("10.0.0.2")];
        assert_eq!(
            client(proxy, &xff("1.2.3.4, 203.0.113.9, 10.0.0.2"), &two),
            ip("203.0.113.9")
        );
        assert_eq!(client(proxy, &xff("garbage"), &[proxy]), proxy);
        assert_eq!(client(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }

    #[test]
    fn a_trusted_ipv4_proxy_is_known_on_a_dual_stack_listener() {
        let h = xff("203.0.113.9");
        let mapped = ip("::ffff:127.0.0.1");
        assert_eq!(client(mapped, &h, &[ip("127.0.0.1")]), ip("203.0.113.9"));
        // A mapped hop in the header is the same client as the plain one.
        let h = xff("::ffff:203.0.113.9");
        assert_eq!(client(mapped, &h, &[ip("127.0.0.1")]), ip("203.0.113.9"));
    }

    #[test]
    fn a_client_gets_its_allowance_then_waits_for_it() {
        let l = Limiter::new(3);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert!((0..3).all(|_| l.allow_at(a, t0)));
        assert!(!l.allow_at(a, t0));
        assert!(
            l.allow_at(ip("192.0.2.2"), t0),
            "another client has its own"
        );
        assert!(
            l.allow_at(a, t0 + Duration::from_secs(20)),
            "one back after 60/3 s"
        );
        assert!(!l.allow_at(a, t0 + Duration::from_secs(20)));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let l = Limiter::new(1);
        let t0 = Instant::now();
        assert!(l.allow_at(ip("2001:db8:1:2::1"), t0));
        assert!(!l.allow_at(ip("2001:db8:1:2::ffff"), t0));
        assert!(l.allow_at(ip("2001:db8:1:3::1"), t0));
    }
}
