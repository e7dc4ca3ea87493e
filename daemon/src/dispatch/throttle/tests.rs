#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use touchpoint_common::policy::DomainThrottle;

use super::*;

fn limits() -> Throttle {
    Throttle {
        global_per_minute: 5,
        tenant_per_day: 3,
        domains: BTreeMap::from([
            (
                "default".to_string(),
                DomainThrottle {
                    concurrency: 2,
                    per_minute: 0,
                },
            ),
            (
                "gmail.com".to_string(),
                DomainThrottle {
                    concurrency: 1,
                    per_minute: 2,
                },
            ),
        ]),
    }
}

#[test]
fn each_limit_holds_and_a_slot_comes_back() {
    let mut t = Throttles::default();
    t.set_limits(&limits());
    let a = TenantId::new("a").unwrap();
    let b = TenantId::new("b").unwrap();
    assert_eq!(t.take(&a, "gmail.com", 0), Ok(()));
    // One connection to gmail at a time.
    assert_eq!(t.take(&b, "gmail.com", 1), Err(Wait::Domain));
    t.done(&a, "gmail.com", true);
    assert_eq!(t.take(&b, "gmail.com", 2), Ok(()));
    t.done(&b, "gmail.com", true);
    // Two a minute to gmail.
    assert_eq!(t.take(&b, "gmail.com", 3), Err(Wait::Domain));
    assert_eq!(t.take(&b, "gmail.com", 60_001), Ok(()));
    t.done(&b, "gmail.com", false);
    // Tenant a: 3 a day (1 sent so far).
    assert_eq!(t.take(&a, "web.de", 60_002), Ok(()));
    assert_eq!(t.take(&a, "web.de", 60_003), Ok(()));
    assert_eq!(t.take(&a, "gmx.de", 60_004), Err(Wait::TenantDay));
    // A deferred email gives its day slot back.
    t.done(&a, "web.de", false);
    assert_eq!(t.take(&a, "gmx.de", 60_005), Ok(()));
    // Global: 5 a minute. Within the last minute: 60_001, 60_002,
    // 60_003, 60_005; one more fits, then none.
    assert_eq!(t.take(&b, "gmx.de", 60_006), Ok(()));
    assert_eq!(t.take(&b, "gmx.de", 60_006), Err(Wait::Global));
    let st = t.status(60_006);
    let global = st.iter().find(|s| s.name == "global").unwrap();
    assert_eq!((global.used, global.limit, global.saturation), (5, 5, 100));
    assert!(st
        .iter()
        .any(|s| s.name == "domain gmail.com" && s.concurrency == 1));
}

#[test]
fn a_new_limit_applies_to_the_next_message() {
    let mut t = Throttles::default();
    t.set_limits(&limits());
    let a = TenantId::new("a").unwrap();
    assert_eq!(t.take(&a, "x.de", 0), Ok(()));
    assert_eq!(t.take(&a, "x.de", 0), Ok(()));
    // Default concurrency 2, both in flight.
    assert_eq!(t.take(&a, "x.de", 0), Err(Wait::Domain));
    t.done(&a, "x.de", true);
    assert_eq!(t.take(&a, "y.de", 0), Ok(()));
    // Three today: the tenant's day is full.
    assert_eq!(t.take(&a, "z.de", 0), Err(Wait::TenantDay));
    let mut more = limits();
    more.tenant_per_day = 10;
    t.set_limits(&more);
    assert_eq!(t.take(&a, "z.de", 0), Ok(()));
}
