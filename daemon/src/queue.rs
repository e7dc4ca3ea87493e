//! The queue as the console lists it: one page of the outbox of every
//! tenant in the caller's scope, filtered, counted, ordered and paged in the
//! daemon from each tenant's outbox index; only the page's messages are
//! read, and the recipients' names and towns (for free text) only when the
//! filter has free text. One store is held at a time.

use std::cmp::Ordering;

use touchpoint_common::outbox::Message;
use touchpoint_common::protocol::{QueuePage, QueueRow};
use touchpoint_common::queue::{QueueFilter, STATUSES};
use touchpoint_common::TenantId;

use crate::store::index::{Ordered, OutboxIndex};
use crate::store::{Result, Stores, TenantStore};

/// Rows per page at most.
pub const MAX_PAGE: u32 = 1_000;

/// One page of the queue of `tenants` (in the order given: the caller
/// passes them sorted), in the filter's order (`QueueFilter::sort`: send
/// time, latest first, by default; ties by tenant, then newest first).
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
    let mut matches: Vec<Ordered> = Vec::new();
    // One store at a time, let go before the next: a scope of more tenants
    // than `max_open_tenants` must not hold them all open at once.
    for (i, t) in tenants.iter().enumerate() {
        // A tenant that never stored anything has no messages; any other
        // that cannot be read fails the page: a listing short of its rows
        // would look complete.
        let select = |ix: &OutboxIndex| ix.select(filter, i, &mut matches);
        // Names, postcodes, towns and email domains are read only for a
        // filter with free text; without, a closed store's kept index
        // answers while its outbox was not written since.
        let sel = if filter.text.trim().is_empty() {
            stores.with_outbox_index(t, select)?
        } else {
            match stores.tenant_if_exists(t)? {
                Some(store) => Some(store.with_index(select)?),
                None => None,
            }
        };
        let Some(sel) = sel else {
            continue;
        };
        total += sel.total;
        for (c, n) in counts.iter_mut().zip(sel.counts) {
            *c += n;
        }
    }
    let order = |a: &Ordered, b: &Ordered| -> Ordering {
        if filter.sort.reversed {
            b.cmp(a)
        } else {
            a.cmp(b)
        }
    };
    // The page's matches in order, without sorting the rest.
    let from = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(matches.len());
    if from > 0 && from < matches.len() {
        matches.select_nth_unstable_by(from, order);
    }
    let rest = &mut matches[from..];
    let take = limit.min(rest.len());
    if take > 0 && take < rest.len() {
        rest.select_nth_unstable_by(take, order);
    }
    let picked = &mut rest[..take];
    picked.sort_unstable_by(order);
    // The page's rows, read tenant by tenant (each store opened once more
    // if it was closed meanwhile), then put back in the page's order.
    let mut by_tenant: Vec<(usize, usize)> = picked
        .iter()
        .enumerate()
        .map(|(at, m)| (m.tenant(), at))
        .collect();
    by_tenant.sort_unstable();
    let mut rows: Vec<Option<QueueRow>> = vec![None; take];
    let mut store: Option<(usize, std::sync::Arc<TenantStore>)> = None;
    for (i, at) in by_tenant {
        if store.as_ref().is_none_or(|(open, _)| *open != i) {
            // Let go of the last one first, so it may be closed.
            drop(store.take());
            let Some(t) = tenants.get(i) else { continue };
            store = stores.tenant_if_exists(t)?.map(|s| (i, s));
        }
        let Some((_, s)) = &store else { continue };
        // Gone between the index and now (cannot happen: messages are
        // never deleted), so simply left out.
        if let Some(msg) = s.message(picked[at].id())? {
            rows[at] = Some(row(s, msg)?);
        }
    }
    let rows: Vec<QueueRow> = rows.into_iter().flatten().collect();
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
    let (name, town) = store
        .customer(&m.recipient)?
        .map(|c| {
            let a = &c.address;
            let town = format!("{} {}", a.postcode, a.city).trim().to_string();
            (c.display_name(), town)
        })
        .unwrap_or_default();
    let updated_at = m.history.last().map(|h| h.0).unwrap_or(m.planned_at);
    let cost = m.listed_cost();
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
        town,
    })
}

#[cfg(test)]
mod tests;
