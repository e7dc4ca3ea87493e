//! The queue as the console lists it: one page of the outbox of every
//! tenant in the caller's scope, filtered, counted and paged in the daemon
//! from each tenant's outbox index; only the page's messages are read.

use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::{QueuePage, QueueRow};
use touchpoint_common::queue::{QueueFilter, STATUSES};
use touchpoint_common::TenantId;

use crate::store::{Result, Stores, TenantStore};

/// Rows per page at most.
pub const MAX_PAGE: u32 = 1_000;

/// One page of the queue of `tenants` (in the order given: the caller
/// passes them sorted), newest message first within a tenant.
pub fn page(
    stores: &Stores,
    tenants: &[TenantId],
    filter: &QueueFilter,
    offset: u64,
    limit: u32,
) -> Result<QueuePage> {
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let mut total = 0u64;
    let mut counts = [0u64; STATUSES.len()];
    let mut skip = offset;
    let mut picked: Vec<(std::sync::Arc<TenantStore>, Vec<u64>)> = Vec::new();
    let mut taken = 0;
    for t in tenants {
        // A tenant that never stored anything has no messages; any other
        // that cannot be read fails the page: a listing short of its rows
        // would look complete.
        let Some(store) = stores.tenant_if_exists(t)? else {
            continue;
        };
        let sel = store.with_index(|ix| ix.select(filter, skip, limit - taken))?;
        total += sel.total;
        for (c, n) in counts.iter_mut().zip(sel.counts) {
            *c += n;
        }
        skip = skip.saturating_sub(sel.total);
        taken += sel.ids.len();
        if !sel.ids.is_empty() {
            picked.push((store, sel.ids));
        }
    }
    let mut rows = Vec::with_capacity(taken);
    for (store, ids) in picked {
        for id in ids {
            // Gone between the index and now (cannot happen: messages are
            // never deleted), so simply left out.
            if let Some(m) = store.message(id)? {
                rows.push(row(&store, m)?);
            }
        }
    }
    Ok(QueuePage {
        filter: filter.clone(),
        offset,
        total,
        counts: STATUSES
            .into_iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .collect(),
        rows,
    })
}

/// A message as the queue lists it.
pub fn row(store: &TenantStore, m: Message) -> Result<QueueRow> {
    let name = store
        .customer(&m.recipient)?
        .map(|c| c.display_name())
        .unwrap_or_default();
    let updated_at = m.history.last().map(|h| h.0).unwrap_or(m.planned_at);
    let cost = if m.status == MessageStatus::Sent || m.dispatch.booked != 0 {
        m.dispatch.booked
    } else {
        m.cost
    };
    Ok(QueueRow {
        tenant: store.id().clone(),
        id: m.id,
        status: m.status,
        channel: m.channel,
        service: m.service,
        template: m.template,
        send_on: m.send_on,
        send_at: m.send_at,
        recipient: m.recipient,
        name,
        address: m.dispatch.address,
        cost,
        attempts: m.dispatch.attempts,
        last_error: m.dispatch.last_error,
        updated_at,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use touchpoint_common::config::StoresConfig;
    use touchpoint_common::domain::{Channel, Timestamp};
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

        let p = page(&s, &both, &q(""), 0, 5).unwrap();
        assert_eq!(p.total, 31);
        assert_eq!(p.counts, vec![(S::Planned, 31)]);
        assert_eq!(
            ids(&p),
            (26..=30)
                .rev()
                .map(|i| ("d001".to_string(), i))
                .collect::<Vec<_>>()
        );
        // The last page runs over into the next tenant.
        let p = page(&s, &both, &q(""), 28, 5).unwrap();
        assert_eq!(
            ids(&p),
            vec![("d001".into(), 2), ("d001".into(), 1), ("d002".into(), 1)]
        );
        assert_eq!(p.rows[0].name, "", "no customer record: empty name");
        assert_eq!(p.rows[0].updated_at, Timestamp(1_000));

        let p = page(&s, &both, &q("channel:post service:inspection"), 0, 100).unwrap();
        let want: Vec<u64> = (1..=30).rev().filter(|i| i % 6 == 0).collect();
        assert_eq!(p.rows.iter().map(|r| r.id).collect::<Vec<_>>(), want);
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
        let p = page(&s, &[tid("d001")], &q(""), 0, 1).unwrap();
        assert_eq!((p.total, p.rows[0].id), (31, 31));

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
}
