#![allow(clippy::unwrap_used)]
use touchpoint_common::config::StoresConfig;
use touchpoint_common::domain::{Channel, Customer, ImportReport, Timestamp};
use touchpoint_common::outbox::{Message, MessageStatus as S};
use touchpoint_common::Date;

use super::*;
use crate::store::{Change, PlanWrite};

fn tid(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

fn day(d: u32) -> Date {
    Date::from_ymd(2026, 11, d).unwrap()
}

fn msg(id: u64, channel: Channel, service: &str, on: Date) -> Message {
    Message {
        id,
        message_id: format!("<tp.x.{id}@test>"),
        recipient: format!("K{id:05}"),
        channel,
        service: service.into(),
        template: format!("{service}_tpl"),
        occasions: Vec::new(),
        send_on: on,
        send_at: 540,
        cost: 100,
        value: 0,
        status: S::Planned,
        why: Vec::new(),
        planned_at: Timestamp(1_000),
        policy: 1,
        history: Vec::new(),
        dispatch: Default::default(),
    }
}

fn stores(dir: &std::path::Path) -> Stores {
    let s = Stores::open(dir, &StoresConfig::default()).unwrap();
    for t in ["d001", "d002"] {
        s.central().register_tenant(&tid(t), t).unwrap();
    }
    s
}

fn plan(s: &Stores, t: &str, msgs: &[Message]) {
    s.tenant(&tid(t))
        .unwrap()
        .commit_plan(&PlanWrite {
            new: msgs,
            revised: &[],
            stamp: 1,
        })
        .unwrap();
}

fn q(text: &str) -> QueueFilter {
    QueueFilter::parse(text).unwrap()
}

fn ids(p: &QueuePage) -> Vec<(String, u64)> {
    p.rows
        .iter()
        .map(|r| (r.tenant.to_string(), r.id))
        .collect()
}

#[test]
fn pages_filters_and_counts_follow_planning_and_dispatch_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = stores(dir.path());
    let both = [tid("d001"), tid("d002")];
    // Written before the index exists: the first request builds it.
    let first: Vec<Message> = (1..=30)
        .map(|i| {
            let ch = if i % 3 == 0 {
                Channel::Post
            } else {
                Channel::Email
            };
            let svc = if i % 2 == 0 {
                "inspection"
            } else {
                "service_due"
            };
            msg(i, ch, svc, day(10 + (i as u32 % 5)))
        })
        .collect();
    plan(&s, "d001", &first);
    plan(&s, "d002", &[msg(1, Channel::Phone, "birthday", day(20))]);

    // By default the latest send time comes first, whichever tenant.
    let p = page(&s, &both, &q(""), 0, 2).unwrap();
    assert_eq!(ids(&p), vec![("d002".into(), 1), ("d001".into(), 29)]);
    let p = page(&s, &both, &q("sort:tenant"), 0, 5).unwrap();
    assert_eq!(p.total, 31);
    assert_eq!(p.counts, vec![(S::Planned, 31)]);
    assert_eq!(
        ids(&p),
        [29, 24, 19, 14, 9]
            .map(|i| ("d001".to_string(), i))
            .to_vec(),
        "a tenant's latest send day first, newest message first within it"
    );
    // The last page runs over into the next tenant.
    let p = page(&s, &both, &q("sort:tenant"), 28, 5).unwrap();
    assert_eq!(
        ids(&p),
        vec![("d001".into(), 10), ("d001".into(), 5), ("d002".into(), 1)]
    );
    assert_eq!(p.rows[0].name, "", "no customer record: empty name");
    assert_eq!(p.rows[0].updated_at, Timestamp(1_000));

    let p = page(&s, &both, &q("channel:post service:inspection"), 0, 100).unwrap();
    assert_eq!(
        p.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![24, 18, 12, 6, 30]
    );
    let p = page(&s, &both, &q("service:inspection,birthday"), 0, 100).unwrap();
    assert_eq!(p.total, 16, "a list of services");
    let p = page(&s, &both, &q("date:2026-11-10..2026-11-11"), 0, 100).unwrap();
    assert_eq!(p.total, 12);
    assert_eq!(page(&s, &both, &q("k00007"), 0, 9).unwrap().total, 1);
    assert_eq!(
        page(&s, &both, &q("BIRTH"), 0, 9).unwrap().total,
        1,
        "service text"
    );
    assert_eq!(
        page(&s, &both, &q("inspection_tpl"), 0, 99).unwrap().total,
        15,
        "template text"
    );
    assert_eq!(page(&s, &both, &q("service:nope"), 0, 9).unwrap().total, 0);

    // A planning run after the index exists.
    plan(
        &s,
        "d001",
        &[msg(31, Channel::Email, "inspection", day(12))],
    );
    assert_eq!(page(&s, &[tid("d001")], &q(""), 0, 1).unwrap().total, 31);
    let p = page(&s, &[tid("d001")], &q("date:2026-11-12"), 0, 1).unwrap();
    assert_eq!((p.total, p.rows[0].id), (7, 31));

    // Dispatch transitions: queued with an address, one deferred with an answer.
    let store = s.tenant(&tid("d001")).unwrap();
    let mut changes = Vec::new();
    for id in [1, 2, 4] {
        let m = store.message(id).unwrap().unwrap();
        let mut after = m.clone();
        after.dispatch.address = format!("Kunde{id}@Example.DE");
        after.dispatch.retry_at = Some(Timestamp(5_000));
        after.set_status(Timestamp(9_000 + id as i64), S::Queued, "email queue");
        if id == 4 {
            after.dispatch.last_error = "451 4.7.1 Greylisted, try later".into();
            after.status = S::Deferred;
        }
        changes.push(Change::new(m, after));
    }
    store.apply(&changes).unwrap();
    let p = page(&s, &both, &q("status:queued,deferred"), 0, 10).unwrap();
    assert_eq!(
        p.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![4, 2, 1]
    );
    assert_eq!(p.rows[1].address, "Kunde2@Example.DE");
    assert_eq!(p.rows[1].updated_at, Timestamp(9_002));
    assert_eq!(
        p.counts,
        vec![(S::Planned, 29), (S::Queued, 2), (S::Deferred, 1)],
        "counts ignore the status criterion"
    );
    let p = page(&s, &both, &q("status:planned example.de"), 0, 10).unwrap();
    assert_eq!(p.total, 0);
    assert_eq!(p.counts, vec![(S::Queued, 2), (S::Deferred, 1)]);
    assert_eq!(
        page(&s, &both, &q("greylisted"), 0, 9).unwrap().rows[0].id,
        4
    );
    // Nothing is indexed across the fields' boundary.
    assert_eq!(page(&s, &both, &q("k00004kunde4"), 0, 9).unwrap().total, 0);

    // Closed and opened again: rebuilt from the store, the same answers.
    drop(store);
    s.close_all().unwrap();
    let p = page(&s, &both, &q("status:queued,deferred"), 0, 10).unwrap();
    assert_eq!(
        p.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![4, 2, 1]
    );
    assert_eq!(page(&s, &both, &q(""), 0, 1).unwrap().total, 32);
}

#[test]
fn a_scope_lists_only_its_tenants_and_limits_are_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let s = stores(dir.path());
    let many: Vec<Message> = (1..=1_200)
        .map(|i| msg(i, Channel::Email, "service_due", day(3)))
        .collect();
    plan(&s, "d001", &many);
    plan(&s, "d002", &[msg(1, Channel::Post, "service_due", day(3))]);
    let p = page(&s, &[tid("d002")], &q(""), 0, 50).unwrap();
    assert_eq!(ids(&p), vec![("d002".into(), 1)]);
    assert_eq!(p.total, 1);
    let p = page(&s, &[tid("d001"), tid("d002")], &q(""), 0, 5_000).unwrap();
    assert_eq!((p.total, p.rows.len()), (1_201, MAX_PAGE as usize));
    let p = page(&s, &[tid("d001")], &q(""), 0, 0).unwrap();
    assert_eq!(p.rows.len(), 1);
    let p = page(&s, &[tid("d001")], &q(""), 5_000, 10).unwrap();
    assert!(p.rows.is_empty());
    assert_eq!(p.total, 1_200);
}

fn customer(
    no: &str,
    first: &str,
    last: &str,
    postcode: &str,
    city: &str,
    email: &str,
) -> Customer {
    let mut c = crate::testkit::person(no).build();
    c.first_name = first.into();
    c.last_name = last.into();
    c.address.postcode = postcode.into();
    c.address.city = city.into();
    c.email = Some(email.into());
    c
}

fn import(s: &Stores, t: &str, customers: &[Customer]) {
    let store = s.tenant(&tid(t)).unwrap();
    let id = store.next_import_id().unwrap();
    let mut tx = store.begin_import(id).unwrap();
    for c in customers {
        tx.put_customer(c).unwrap();
    }
    let report = ImportReport::new(id, tid(t), "kunden.csv", format!("hash-{id}"), Timestamp(0));
    tx.commit(&report).unwrap();
}

fn to(id: u64, recipient: &str) -> Message {
    Message {
        recipient: recipient.into(),
        ..msg(id, Channel::Email, "birthday", day(10))
    }
}

#[test]
fn free_text_finds_names_postcodes_cities_and_email_domains() {
    let dir = tempfile::tempdir().unwrap();
    let s = stores(dir.path());
    let both = [tid("d001"), tid("d002")];
    import(
        &s,
        "d001",
        &[
            customer(
                "K1",
                "Ralf",
                "Wolf",
                "10115",
                "Berlin",
                "ralf.w@example.org",
            ),
            customer(
                "K2",
                "Tim",
                "Fößel",
                "80807",
                "München",
                "tim@autohaus-test.de",
            ),
        ],
    );
    import(
        &s,
        "d002",
        &[customer(
            "K1",
            "Eva",
            "Lang",
            "20095",
            "Hamburg",
            "eva@example.org",
        )],
    );
    plan(&s, "d001", &[to(1, "K1"), to(2, "K2"), to(3, "K2")]);
    plan(&s, "d002", &[to(1, "K1")]);
    let found = |text: &str| ids(&page(&s, &both, &q(text), 0, 10).unwrap());
    assert_eq!(found("Wolf"), vec![("d001".into(), 1)], "a last name");
    assert_eq!(
        found("ralf wolf"),
        vec![("d001".into(), 1)],
        "the whole name"
    );
    assert_eq!(
        found("example.org"),
        vec![("d001".into(), 1), ("d002".into(), 1)],
        "an email domain"
    );
    assert_eq!(
        found("ralf.w"),
        Vec::<(String, u64)>::new(),
        "not the local part"
    );
    assert_eq!(found("10115").len(), 1, "a postcode");
    assert_eq!(found("hamburg"), vec![("d002".into(), 1)], "a city");
    assert_eq!(found("MÜNCHEN").len(), 2, "case-insensitive with umlauts");
    assert_eq!(found("föß").len(), 2, "Fößel by föß");
    assert_eq!(found("FÖSSEL").len(), 2, "ß as ss");
    assert_eq!(found("k2").len(), 2, "the customer number, any case");
    assert_eq!(found("wolf status:sent").len(), 0, "and the other criteria");

    // A customer imported after the index exists, with a message planned
    // after: both read from the dealer's data.
    import(
        &s,
        "d001",
        &[
            customer("K1", "Ralf", "Wölfle", "10115", "Berlin", "ralf@firma.de"),
            customer("K3", "Jana", "Kühn", "04109", "Leipzig", "jana@example.net"),
        ],
    );
    plan(&s, "d001", &[to(4, "K3")]);
    assert_eq!(found("Wolf").len(), 0, "the name the import changed");
    assert_eq!(found("wölfle"), vec![("d001".into(), 1)]);
    assert_eq!(found("firma.de"), vec![("d001".into(), 1)]);
    assert_eq!(found("example.org"), vec![("d002".into(), 1)]);
    assert_eq!(found("kühn"), vec![("d001".into(), 4)]);
    // The customer view's lookup by number still finds its messages.
    let store = s.tenant(&tid("d001")).unwrap();
    assert_eq!(
        store.with_index(|ix| ix.of_recipient("K2")).unwrap(),
        vec![3, 2]
    );
    assert!(store
        .with_index(|ix| ix.of_recipient("k2"))
        .unwrap()
        .is_empty());
}

#[test]
fn every_order_pages_through_the_same_matches() {
    let dir = tempfile::tempdir().unwrap();
    let s = stores(dir.path());
    let both = [tid("d001"), tid("d002")];
    let mk = |id: u64, on: u32, at: u16, cost: i64, status: S| Message {
        send_at: at,
        cost,
        status,
        ..msg(id, Channel::Post, "birthday", day(on))
    };
    plan(
        &s,
        "d001",
        &[
            mk(1, 3, 600, 120, S::Held),
            mk(2, 3, 540, 95, S::Planned),
            mk(3, 5, 540, 300, S::Planned),
            mk(4, 1, 480, 95, S::Failed),
        ],
    );
    plan(
        &s,
        "d002",
        &[mk(1, 4, 540, 50, S::Planned), mk(2, 3, 600, 500, S::Held)],
    );
    let order = |text: &str| ids(&page(&s, &both, &q(text), 0, 10).unwrap());
    let l = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(t, i)| (t.to_string(), *i)).collect()
    };
    assert_eq!(
        order(""),
        l(&[
            ("d001", 3),
            ("d002", 1),
            ("d001", 1),
            ("d002", 2),
            ("d001", 2),
            ("d001", 4)
        ]),
        "latest send day and minute first; a tie by tenant"
    );
    assert_eq!(
        order("sort:-time"),
        l(&[
            ("d001", 4),
            ("d001", 2),
            ("d002", 2),
            ("d001", 1),
            ("d002", 1),
            ("d001", 3)
        ])
    );
    assert_eq!(
        order("sort:cost"),
        l(&[
            ("d002", 2),
            ("d001", 3),
            ("d001", 1),
            ("d001", 2),
            ("d001", 4),
            ("d002", 1)
        ]),
        "dearest first; equal costs by send time"
    );
    assert_eq!(
        order("sort:status"),
        l(&[
            ("d001", 3),
            ("d002", 1),
            ("d001", 2),
            ("d001", 1),
            ("d002", 2),
            ("d001", 4)
        ]),
        "planned, held, failed"
    );
    assert_eq!(
        order("sort:tenant status:planned,held"),
        l(&[
            ("d001", 3),
            ("d001", 1),
            ("d001", 2),
            ("d002", 1),
            ("d002", 2)
        ])
    );
    // Pages of any size, at any offset, put together are the whole order.
    for text in ["", "sort:cost", "sort:-status", "sort:tenant"] {
        let all = order(text);
        for size in 1..=4 {
            let mut pages = Vec::new();
            let mut offset = 0;
            while offset < all.len() as u64 {
                pages.extend(ids(&page(&s, &both, &q(text), offset, size).unwrap()));
                offset += u64::from(size);
            }
            assert_eq!(pages, all, "{text} in pages of {size}");
        }
    }
    let p = page(&s, &both, &q("sort:cost"), 0, 1).unwrap();
    assert_eq!(
        (p.rows[0].cost, p.filter.sort.to_string()),
        (500, "cost".into())
    );
}

#[test]
fn a_scope_wider_than_the_open_limit_is_paged_without_holding_every_store_open() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoresConfig {
        max_open_tenants: 2,
        ..StoresConfig::default()
    };
    let s = Stores::open(dir.path(), &cfg).unwrap();
    let tenants: Vec<TenantId> = (1..=5).map(|i| tid(&format!("d{i:03}"))).collect();
    for t in &tenants {
        s.central().register_tenant(t, t.as_ref()).unwrap();
    }
    // Tenant i plans messages 1..=i, each a day later than the last, so
    // the latest send days interleave across tenants.
    for (n, t) in tenants.iter().enumerate() {
        let msgs: Vec<Message> = (1..=n as u64 + 1)
            .map(|id| {
                msg(
                    id,
                    Channel::Email,
                    "service",
                    day(id as u32 * 2 + n as u32 % 2),
                )
            })
            .collect();
        plan(&s, t.as_ref(), &msgs);
    }
    // Every whole listing (15 rows) in pages of 4, by send day and by
    // tenant: the same rows as one page of all of them, in its order.
    for text in ["", "sort:tenant"] {
        let whole = ids(&page(&s, &tenants, &q(text), 0, 100).unwrap());
        assert_eq!(whole.len(), 15, "{text}");
        let mut pages = Vec::new();
        for offset in (0..15).step_by(4) {
            let p = page(&s, &tenants, &q(text), offset, 4).unwrap();
            assert_eq!(p.total, 15);
            // The page let go of its stores: no more than the limit stay
            // open behind it.
            assert!(s.open_count() <= 2, "{} open", s.open_count());
            pages.extend(ids(&p));
        }
        assert_eq!(pages, whole, "{text}");
    }
    // The rows come back in the page's order, not the order they were
    // read in (tenant by tenant).
    let latest_first = page(&s, &tenants, &q(""), 0, 100).unwrap();
    assert!(latest_first
        .rows
        .windows(2)
        .all(|w| (w[0].send_on, w[0].send_at) >= (w[1].send_on, w[1].send_at)));
    assert_ne!(
        latest_first.rows[0].tenant, latest_first.rows[1].tenant,
        "the latest two are of different tenants"
    );
    let by_tenant = page(&s, &tenants, &q("sort:tenant"), 0, 100).unwrap();
    assert!(by_tenant
        .rows
        .windows(2)
        .all(|w| w[0].tenant <= w[1].tenant));
}

/// A listing without free text over closed stores selects from the indexes
/// kept at their close: a page past the last row opens no store. A write
/// of one tenant's outbox is listed at once, its store read again.
#[test]
fn a_listing_over_closed_stores_opens_none_until_their_outbox_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stores::open(dir.path(), &StoresConfig::default()).unwrap();
    let tenants: Vec<TenantId> = (1..=3).map(|i| tid(&format!("d{i:03}"))).collect();
    for (n, t) in tenants.iter().enumerate() {
        s.central().register_tenant(t, t.as_ref()).unwrap();
        let msgs: Vec<Message> = (1..=2)
            .map(|id| msg(id, Channel::Email, "service", day(n as u32 + 1)))
            .collect();
        plan(&s, t.as_ref(), &msgs);
    }
    let whole = ids(&page(&s, &tenants, &q(""), 0, 100).unwrap());
    assert_eq!(whole.len(), 6);
    s.close_idle(std::time::Duration::ZERO);
    assert_eq!(s.open_count(), 0);
    assert!(s.kept_index_bytes() > 0);
    let past = page(&s, &tenants, &q(""), 100, 10).unwrap();
    assert_eq!((past.total, past.rows.len()), (6, 0));
    assert_eq!(s.open_count(), 0, "selected from the kept indexes");
    // Free text reads the recipients of the store: opened.
    page(&s, &tenants, &q("K1"), 100, 10).unwrap();
    assert!(s.open_count() > 0);
    s.close_idle(std::time::Duration::ZERO);
    // d002 holds message 1: listed held at once.
    let store = s.tenant(&tenants[1]).unwrap();
    let before = store.message(1).unwrap().unwrap();
    let mut after = before.clone();
    after.status = S::Held;
    store.apply(&[Change::new(before, after)]).unwrap();
    drop(store);
    s.close_idle(std::time::Duration::ZERO);
    let held = page(&s, &tenants, &q("status:held"), 0, 10).unwrap();
    assert_eq!(ids(&held), vec![("d002".to_string(), 1)]);
    // Only the store of the page's row was opened again.
    assert_eq!(s.open_count(), 1);
    assert_eq!(page(&s, &tenants, &q(""), 0, 100).unwrap().total, 6);
}
