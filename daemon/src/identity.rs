//! Identity (M3): finds customers of one dealer that are the same person or
//! company and merges them, with an audit trail, reversibly.
//!
//! A merge never deletes or rewrites a customer: it is a [`MergeRecord`]
//! that redirects the merged customer to its survivor, so it can be listed
//! and undone exactly. Everything here works on one [`TenantStore`], and a
//! store handle can only see its own tenant, so customers of different
//! dealers are never compared, let alone merged.
//!
//! A false merge costs more than a missed one (a merged-away person may stop
//! getting mail, or see someone else's data), so the rules are conservative
//! and every merge names its [`MatchReason`]s:
//!
//! - same email, or same phone, and compatible names: the same last name
//!   with compatible first names (equal, one missing, an initial, or a typo
//!   apart), or full names a typo apart;
//! - same name at the same address (postcode, street, house number);
//! - names a typo apart at the same address (Damerau-Levenshtein ≤ 1 from
//!   5 letters, ≤ 2 from 10, first names the same or a typo apart);
//! - companies: same name without its legal form, and same postcode (or
//!   same email or phone).
//!
//! and never: a company with a person, two different birth dates, a man
//! with a woman (by salutation), a pair an operator has separated by an
//! undo, nor first names that families are made of ("Paul" / "Paula",
//! "Maria" / "Marie", "Hans" / "Hanna"): a typo keeps a name's first and
//! last letter. A pair counts however it is reached: a cluster that would
//! hold two birth dates, a man and a woman, or an undone pair is not joined.
//!
//! Candidate pairs come only from blocks of customers sharing a normalised
//! email, phone, company name and postcode, or address, so a pass is linear
//! in the number of customers. A key shared by more customers than a
//! household can plausibly have (a placeholder email typed for everyone,
//! the dealer's own phone number) is ignored; at a crowded address (a large
//! block of flats) only exact names are compared.

mod clusters;
mod keys;
pub mod normalize;

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::Instant;

use touchpoint_common::domain::{Customer, MatchReason, MergeRecord, Timestamp, Vehicle};

use crate::store::{StoreError, TenantStore};
use clusters::{Clusters, Union};
use keys::{FxBuild, Keys, Profile, Sex};

/// Customers sharing one email or phone beyond this are a placeholder
/// ("keine@email.de", the dealer's own number), not a household.
const SHARED_CONTACT_LIMIT: usize = 20;
/// Customers with one name at one address (or one company name in one
/// postcode) beyond this are test or dummy records.
const EXACT_BLOCK_LIMIT: usize = 50;
/// Addresses with more customers than this (a dealer's own address, a
/// large block of flats) are searched for equal names only.
const ADDRESS_BLOCK_LIMIT: usize = 100;
/// No cluster grows beyond this many customer records: chains of weak
/// matches that large join different people.
const MAX_CLUSTER: u32 = 100;
/// Largest edit distance between two full names judged a typo.
const MAX_NAME_DISTANCE: usize = 2;
/// Shorter names are too close to each other by chance ("Jan Ott" / "Jan Orr").
const MIN_SIMILAR_NAME_CHARS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Customers and their keys are indexed with 32 bits.
    #[error("tenant too large for one identity pass (stopped at {0} customers)")]
    TooLarge(usize),
}

/// One person or company we write to, with all their vehicles: their own
/// and those of every customer merged into them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The survivor's record, with an empty email, phone or birth date
    /// filled from the merged members (in `members` order).
    pub customer: Customer,
    /// Customer numbers, survivor first, then the merged ones in order.
    pub members: Vec<String>,
    pub vehicles: Vec<Vehicle>,
}

/// A judged pair: why `a` and `b` are one, and how strong that is (0 strongest).
struct Edge {
    a: u32,
    b: u32,
    rank: u8,
    reasons: Vec<MatchReason>,
}

/// Runs after each import. Finds duplicates among the tenant's customers and
/// records merges. Returns the new merges (none when nothing new matched, so
/// a second pass right after a first one returns nothing).
///
/// Holds the tenant's writer lock for the whole pass, so no import or undo
/// changes the data between finding a match and recording it.
pub fn find_and_merge(
    store: &TenantStore,
    import_id: Option<u64>,
) -> Result<Vec<MergeRecord>, IdentityError> {
    let started = Instant::now();
    let _writer = store.writer();

    let history = store.merges(true)?;
    let map: HashMap<String, String> = history
        .iter()
        .filter(|m| m.undone_at.is_none())
        .map(|m| (m.merged.clone(), m.survivor.clone()))
        .collect();

    // The match keys of every customer: those of the last pass with the
    // customers changed since read again, when the store knows them
    // (`TenantStore::identity_take`); else every customer read.
    let mut changed = None;
    let taken = match store.identity_take()? {
        Some((touched, state)) => match state.downcast::<Keys>() {
            Ok(old) => {
                changed = Some(touched.len());
                old.updated(&touched, |no| store.customer(no))?
            }
            Err(_) => None,
        },
        None => None,
    };
    let keys = match taken {
        Some(keys) => keys,
        None => {
            changed = None;
            let mut keys = Keys::default();
            for c in store.customers() {
                if !keys.push(&c?) {
                    return Err(IdentityError::TooLarge(keys.len()));
                }
            }
            keys
        }
    };
    // customers() yields in key order, which is byte order of the numbers.
    let index_of = |no: &str| keys.index_of(no);

    let mut clusters = Clusters::new(
        keys.iter().map(|(_, p)| p.birth).collect(),
        keys.iter().map(|(_, p)| p.sex).collect(),
        MAX_CLUSTER,
    );
    // Merges already made are facts: their members start as one cluster,
    // represented by whoever they were merged into.
    let mut accepted: Vec<Edge> = Vec::new();
    for m in history.iter().filter(|m| m.undone_at.is_none()) {
        if let (Some(a), Some(b)) = (index_of(&m.merged), index_of(&m.survivor)) {
            clusters.force_union(a, b);
            accepted.push(Edge {
                a,
                b,
                rank: 0,
                reasons: m.reasons.clone(),
            });
        }
    }
    for m in history.iter().filter(|m| m.undone_at.is_some()) {
        if let (Some(a), Some(b)) = (index_of(&m.merged), index_of(&m.survivor)) {
            clusters.forbid(a, b);
        }
    }

    let mut skipped = 0usize;
    let edges = candidate_edges(&keys, &mut clusters, &mut skipped);
    let found = edges.len();
    for e in edges {
        if clusters.try_union(e.a, e.b) == Union::Joined {
            accepted.push(e);
        }
    }

    let mut records = plan_merges(&keys, &map, &mut clusters, &accepted, import_id);
    for r in &mut records {
        r.merge_id = store.next_merge_id()?;
    }
    store.record_merges(&records)?;
    // Kept for the next pass: the customers cannot change while this pass
    // holds the writer lock, and merges are no part of the keys.
    drop(clusters);
    let customers = keys.len();
    store.identity_keep(store.data_version()?, Box::new(keys));
    tracing::info!(
        tenant = %store.id(),
        customers,
        read_again = changed,
        matched_pairs = found,
        merges = records.len(),
        oversized_blocks_ignored = skipped,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "identity pass"
    );
    Ok(records)
}

/// Undoes one merge (for the control layer). The pair is then never merged
/// again automatically.
pub fn undo(store: &TenantStore, merge_id: u64, by: &str) -> Result<MergeRecord, IdentityError> {
    Ok(store.undo_merge(merge_id, by)?)
}

/// Follows merge chains (A → B → C gives C). A customer not merged is its
/// own root. A cycle, which no pass creates but a damaged store could hold,
/// resolves to its smallest customer number so every member agrees.
pub fn resolve(map: &HashMap<String, String>, customer_no: &str) -> String {
    let Some(first) = map.get(customer_no) else {
        return customer_no.to_string();
    };
    let mut seen: HashSet<&str> = HashSet::from([customer_no]);
    let mut cur = first.as_str();
    while let Some(next) = map.get(cur) {
        if !seen.insert(cur) {
            return smallest_in_cycle(map, cur);
        }
        cur = next.as_str();
    }
    cur.to_string()
}

fn smallest_in_cycle(map: &HashMap<String, String>, start: &str) -> String {
    let mut min = start;
    let mut cur = start;
    for _ in 0..map.len() {
        match map.get(cur) {
            Some(next) if next != start => {
                cur = next.as_str();
                min = min.min(cur);
            }
            _ => break,
        }
    }
    min.to_string()
}

/// Every recipient of the tenant in survivor customer-number order: one per
/// customer not merged into another, holding the vehicles of all members.
/// One pass over customers, one over vehicles.
pub fn recipients(store: &TenantStore) -> Result<Vec<Recipient>, IdentityError> {
    let map = store.merge_map()?;
    let mut out: Vec<Recipient> = Vec::new();
    // Customer number (any member) -> index in `out`.
    let mut slot: HashMap<String, usize> = HashMap::new();
    let mut merged: Vec<(String, Customer)> = Vec::new();
    for c in store.customers() {
        let c = c?;
        let root = resolve(&map, &c.customer_no);
        if root == c.customer_no {
            slot.insert(c.customer_no.clone(), out.len());
            out.push(Recipient {
                members: vec![c.customer_no.clone()],
                customer: c,
                vehicles: Vec::new(),
            });
        } else {
            merged.push((root, c));
        }
    }
    for (root, c) in merged {
        match slot.get(&root) {
            Some(&i) => {
                slot.insert(c.customer_no.clone(), i);
                let r = &mut out[i];
                r.members.push(c.customer_no.clone());
                fill_gaps(&mut r.customer, &c);
            }
            // The survivor is gone (erased): the member stands for itself.
            None => {
                slot.insert(c.customer_no.clone(), out.len());
                out.push(Recipient {
                    members: vec![c.customer_no.clone()],
                    customer: c,
                    vehicles: Vec::new(),
                });
            }
        }
    }
    for v in store.vehicles() {
        let v = v?;
        if let Some(&i) = slot.get(&v.customer_no) {
            out[i].vehicles.push(v);
        }
    }
    out.sort_by(|a, b| a.customer.customer_no.cmp(&b.customer.customer_no));
    Ok(out)
}

fn fill_gaps(into: &mut Customer, from: &Customer) {
    let empty = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
    if empty(&into.email) && !empty(&from.email) {
        into.email = from.email.clone();
    }
    if empty(&into.phone) && !empty(&from.phone) {
        into.phone = from.phone.clone();
    }
    if into.birth_date.is_none() {
        into.birth_date = from.birth_date;
    }
}

// ----- matching ----------------------------------------------------------------

/// Groups indexes by key; returns the groups of two or more, each in index
/// order. O(n); only duplicates allocate.
fn blocks<K: Hash + Eq>(n: usize, keys: impl Iterator<Item = (u32, K)>) -> Vec<Vec<u32>> {
    enum Slot {
        First(u32),
        Block(usize),
    }
    let mut seen: HashMap<K, Slot, FxBuild> =
        HashMap::with_capacity_and_hasher(n, FxBuild::default());
    let mut out: Vec<Vec<u32>> = Vec::new();
    for (i, k) in keys {
        match seen.entry(k) {
            Entry::Vacant(v) => {
                v.insert(Slot::First(i));
            }
            Entry::Occupied(mut o) => match *o.get() {
                Slot::First(first) => {
                    o.insert(Slot::Block(out.len()));
                    out.push(vec![first, i]);
                }
                Slot::Block(b) => out[b].push(i),
            },
        }
    }
    out
}

fn candidate_edges(keys: &Keys, clusters: &mut Clusters, skipped: &mut usize) -> Vec<Edge> {
    let n = keys.len();
    let idx = || keys.iter();
    let mut edges: Vec<Edge> = Vec::new();

    let mut judge_block = |block: &[u32],
                           limit: usize,
                           prefilter: &dyn Fn(&Profile, &Profile) -> bool,
                           clusters: &mut Clusters| {
        if block.len() > limit {
            *skipped += 1;
            return;
        }
        for (x, &a) in block.iter().enumerate() {
            for &b in &block[x + 1..] {
                let (pa, pb) = (keys.get(a), keys.get(b));
                if !prefilter(&pa, &pb) || clusters.find(a) == clusters.find(b) {
                    continue;
                }
                if let Some((rank, reasons)) = judge(&pa, &pb) {
                    edges.push(Edge {
                        a,
                        b,
                        rank,
                        reasons,
                    });
                }
            }
        }
    };
    let any = |_: &Profile, _: &Profile| true;

    let by_email = blocks(n, idx().filter_map(|(i, p)| Some((i, p.email?))));
    for b in &by_email {
        judge_block(b, SHARED_CONTACT_LIMIT, &any, clusters);
    }
    drop(by_email);
    let by_phone = blocks(n, idx().filter_map(|(i, p)| Some((i, p.phone?))));
    for b in &by_phone {
        judge_block(b, SHARED_CONTACT_LIMIT, &any, clusters);
    }
    drop(by_phone);
    let by_company = blocks(
        n,
        idx().filter_map(|(i, p)| {
            (p.company && !p.last.is_empty() && !p.postcode.is_empty())
                .then_some((i, (p.last, p.postcode)))
        }),
    );
    for b in &by_company {
        judge_block(b, EXACT_BLOCK_LIMIT, &any, clusters);
    }
    drop(by_company);
    // People at one address: same names, and names that can be a typo
    // apart. At a crowded address only the same names are compared.
    let by_address = blocks(
        n,
        idx().filter_map(|(i, p)| Some((i, p.address?)).filter(|_| !p.company)),
    );
    let same_or_near = |a: &Profile, b: &Profile| {
        (a.first == b.first && a.last == b.last)
            || (a.first.chars().next() == b.first.chars().next()
                && (a.first.len() + a.last.len()).abs_diff(b.first.len() + b.last.len())
                    <= MAX_NAME_DISTANCE)
    };
    for b in &by_address {
        if b.len() <= ADDRESS_BLOCK_LIMIT {
            judge_block(b, ADDRESS_BLOCK_LIMIT, &same_or_near, clusters);
        } else {
            let named = blocks(
                b.len(),
                b.iter().map(|&i| {
                    let p = keys.get(i);
                    (i, (p.first, p.last))
                }),
            );
            for nb in &named {
                judge_block(nb, EXACT_BLOCK_LIMIT, &any, clusters);
            }
        }
    }
    drop(by_address);

    // A pair met in several blocks is judged the same each time: keep one.
    edges.sort_unstable_by_key(|e| (e.a, e.b));
    edges.dedup_by_key(|e| (e.a, e.b));
    // Strongest evidence first, so a conflict (two birth dates in one
    // chain) is settled in its favour, and the same way on every run.
    edges.sort_by_key(|e| (e.rank, e.a, e.b));
    edges
}

/// Whether two customers are one, and why. `None` when no rule matches or a
/// guard forbids it. Rank 0: same name and address / company; 1: same
/// email or phone; 2: similar names at the same address.
fn judge(a: &Profile, b: &Profile) -> Option<(u8, Vec<MatchReason>)> {
    if a.company != b.company {
        return None;
    }
    if matches!((a.birth, b.birth), (Some(x), Some(y)) if x != y) {
        return None;
    }
    if a.sex != Sex::Unknown && b.sex != Sex::Unknown && a.sex != b.sex {
        return None;
    }
    let same_email = a.email.as_ref().filter(|e| Some(*e) == b.email.as_ref());
    let same_phone = a.phone.as_ref().filter(|p| Some(*p) == b.phone.as_ref());
    let same_address = a
        .address
        .as_ref()
        .filter(|x| Some(*x) == b.address.as_ref());
    let mut reasons = Vec::new();
    let mut rank = u8::MAX;

    if a.company {
        if a.last.is_empty() || a.last != b.last {
            return None;
        }
        if let Some(e) = same_email {
            reasons.push(MatchReason::SameEmail(e.to_string()));
            rank = 1;
        }
        if let Some(p) = same_phone {
            reasons.push(MatchReason::SamePhone(p.to_string()));
            rank = 1;
        }
        if !a.postcode.is_empty() && a.postcode == b.postcode {
            rank = 0;
        }
        if reasons.is_empty() && rank != 0 {
            return None;
        }
        reasons.push(MatchReason::SameCompany(a.last.to_string()));
        return Some((rank, reasons));
    }

    let exact = !a.last.is_empty() && a.first == b.first && a.last == b.last;
    let similar = if exact { None } else { similar_names(a, b) };
    let compatible = exact
        || similar.is_some()
        || (!a.last.is_empty()
            && a.last == b.last
            && first_names_compatible(a.first, b.first, true));
    if compatible {
        if let Some(e) = same_email {
            reasons.push(MatchReason::SameEmail(e.to_string()));
            rank = 1;
        }
        if let Some(p) = same_phone {
            reasons.push(MatchReason::SamePhone(p.to_string()));
            rank = 1;
        }
    }
    if let Some(address) = same_address {
        if exact {
            reasons.push(MatchReason::SameNameAndAddress {
                name: a.full_name(),
                address: address.to_string(),
            });
            rank = 0;
        } else if let Some(distance) = similar {
            reasons.push(MatchReason::SimilarNameSameAddress {
                a: a.full_name(),
                b: b.full_name(),
                distance,
                address: address.to_string(),
            });
            rank = rank.min(2);
        }
    }
    (!reasons.is_empty()).then_some((rank, reasons))
}

/// Full names a typo apart whose first names are the same or themselves a
/// typo apart. Damerau-Levenshtein distance on the normalised full name: at
/// most 1 when the shorter name has 5 to 9 letters, at most 2 from 10
/// letters on, never below 5 letters.
fn similar_names(a: &Profile, b: &Profile) -> Option<u32> {
    if a.last.is_empty() || b.last.is_empty() || !first_names_compatible(a.first, b.first, false) {
        return None;
    }
    let (fa, fb) = (a.full_name(), b.full_name());
    let letters = |s: &str| s.chars().filter(|c| *c != ' ').count();
    let shorter = letters(&fa).min(letters(&fb));
    let d = strsim::damerau_levenshtein(&fa, &fb);
    // Two edits in a short name change too much of it ("Jo Ott" / "Jo Orr").
    let allowed = match shorter {
        n if n < MIN_SIMILAR_NAME_CHARS => 0,
        n if n < 2 * MIN_SIMILAR_NAME_CHARS => 1,
        _ => MAX_NAME_DISTANCE,
    };
    (d <= allowed).then_some(d as u32)
}

/// Whether two normalised first names can belong to one person.
///
/// Equal (ignoring spaces: "Hans Peter" / "Hanspeter"), or one typo in a
/// name of five or more letters that keeps the first and last letter
/// ("Micheal" / "Michael", "Thomas" / "Tomas"). That excludes the pairs
/// families are made of: "Paul" / "Paula", "Daniel" / "Daniela", "Andreas"
/// / "Andrea", "Maria" / "Marie", "Lena" / "Lina", "Hans" / "Hanna".
/// `lenient` (used when email or phone and the last name already agree)
/// also accepts a missing first name and an initial ("H." / "Hans").
fn first_names_compatible(a: &str, b: &str, lenient: bool) -> bool {
    if a == b {
        return true;
    }
    if lenient {
        if a.is_empty() || b.is_empty() {
            return true;
        }
        let initial = |x: &str, y: &str| x.chars().count() == 1 && y.starts_with(x);
        if initial(a, b) || initial(b, a) {
            return true;
        }
    }
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let (ca, cb): (Vec<char>, Vec<char>) = (
        a.chars().filter(|c| *c != ' ').collect(),
        b.chars().filter(|c| *c != ' ').collect(),
    );
    if ca == cb {
        return true;
    }
    ca.len() >= MIN_SIMILAR_NAME_CHARS
        && cb.len() >= MIN_SIMILAR_NAME_CHARS
        && ca.first() == cb.first()
        && ca.last() == cb.last()
        && strsim::generic_damerau_levenshtein(&ca, &cb) <= 1
}

// ----- turning clusters into merges ---------------------------------------------

/// One merge per customer of a cluster that is not yet merged, into the
/// cluster's survivor; the reasons are those on the path of matches that
/// links the customer to the survivor. Merge ids are left at 0.
fn plan_merges(
    keys: &Keys,
    map: &HashMap<String, String>,
    clusters: &mut Clusters,
    accepted: &[Edge],
    import_id: Option<u64>,
) -> Vec<MergeRecord> {
    // Clusters of two or more, ordered by their smallest member.
    let mut cluster_of: HashMap<u32, usize> = HashMap::new();
    let mut members: Vec<Vec<u32>> = Vec::new();
    for i in 0..keys.len() as u32 {
        if clusters.size_of(i) < 2 {
            continue;
        }
        let root = clusters.find(i);
        let c = *cluster_of.entry(root).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[c].push(i);
    }
    let mut edges_of: Vec<Vec<&Edge>> = vec![Vec::new(); members.len()];
    for e in accepted {
        if let Some(&c) = cluster_of.get(&clusters.find(e.a)) {
            edges_of[c].push(e);
        }
    }

    let at = Timestamp::now();
    let mut out = Vec::new();
    for (c, group) in members.iter().enumerate() {
        let unmerged: Vec<u32> = group
            .iter()
            .copied()
            .filter(|&i| !map.contains_key(keys.customer_no(i)))
            .collect();
        if unmerged.len() < 2 {
            continue;
        }
        let best_of = |set: &[u32]| {
            set.iter()
                .copied()
                .max_by_key(|&i| (keys.get(i).score, Reverse(i)))
        };
        let Some(best) = best_of(group) else { continue };
        // The most complete member may already be merged: its root survives.
        let survivor = match keys.index_of(&resolve(map, keys.customer_no(best))) {
            Some(s) if unmerged.contains(&s) => s,
            _ => match best_of(&unmerged) {
                Some(s) => s,
                None => continue,
            },
        };
        let paths = paths_to(survivor, &edges_of[c]);
        for &m in unmerged.iter().filter(|&&m| m != survivor) {
            out.push(MergeRecord {
                merge_id: 0,
                survivor: keys.customer_no(survivor).to_string(),
                merged: keys.customer_no(m).to_string(),
                reasons: path_reasons(m, survivor, &paths),
                at,
                import_id,
                undone_at: None,
                undone_by: None,
            });
        }
    }
    out
}

/// Breadth-first tree from `root` over one cluster's matches: member ->
/// (next member towards the root, the match between them).
fn paths_to<'e>(root: u32, edges: &[&'e Edge]) -> HashMap<u32, (u32, &'e Edge)> {
    let mut adjacent: HashMap<u32, Vec<(u32, &Edge)>> = HashMap::new();
    for e in edges {
        adjacent.entry(e.a).or_default().push((e.b, e));
        adjacent.entry(e.b).or_default().push((e.a, e));
    }
    let mut towards: HashMap<u32, (u32, &Edge)> = HashMap::new();
    let mut queue = VecDeque::from([root]);
    let mut seen = HashSet::from([root]);
    while let Some(x) = queue.pop_front() {
        for &(y, e) in adjacent.get(&x).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(y) {
                towards.insert(y, (x, e));
                queue.push_back(y);
            }
        }
    }
    towards
}

fn path_reasons(from: u32, root: u32, towards: &HashMap<u32, (u32, &Edge)>) -> Vec<MatchReason> {
    let mut reasons: Vec<MatchReason> = Vec::new();
    let mut cur = from;
    while cur != root {
        let Some(&(next, e)) = towards.get(&cur) else {
            break;
        };
        for r in &e.reasons {
            if !reasons.contains(r) {
                reasons.push(r.clone());
            }
        }
        cur = next;
    }
    reasons
}

#[cfg(test)]
mod tests;
