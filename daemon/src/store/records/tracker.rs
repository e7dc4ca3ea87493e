//! The trackers of what changed since a view was computed (see
//! `changes`, which moves them): plain data, so that `records` holds them
//! without importing the code that reads it. Part of `records`; a leaf.

use std::any::Any;
use std::collections::BTreeSet;

use touchpoint_common::consent;
use touchpoint_common::domain::{Channel, Consent};
use touchpoint_common::protocol::OptIns;
use touchpoint_common::Date;

/// More customers touched than this and a tracker is dropped: recomputing
/// the whole tenant is then as cheap.
const MAX_TOUCHED: usize = 100_000;

/// The customer numbers a change may have changed the data of (their own
/// record, a vehicle they hold or held, a visit of such a vehicle, their
/// consents, a merge they are in).
pub(in crate::store) type Touched = BTreeSet<String>;

/// A view's standing: computed from the data at `version`, except for the
/// customers `touched` since.
pub(super) struct Since {
    pub(super) version: u64,
    pub(super) touched: Touched,
}

impl Since {
    pub(super) fn carry(&mut self, before: u64, after: u64, touched: &Touched) -> bool {
        if self.version != before || self.touched.len() + touched.len() > MAX_TOUCHED {
            return false;
        }
        self.version = after;
        self.touched.extend(touched.iter().cloned());
        true
    }
}

/// A planning run's standing that can outlive its open store: the
/// planner's own state, which says how to write it down
/// ([`Park::park`]), so that a store closed as idle (or at shutdown) and
/// opened again still re-plans only what changed.
pub trait Park: Any + Send {
    /// The state's bytes to keep across a close, `None` if it may not be
    /// kept: `outbox_writes` is the store's count of outbox writes by
    /// anything but planning now (the count starts again at 0 on open).
    fn park(&self, outbox_writes: u64) -> Option<Vec<u8>>;
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A planning run's standing as the store holds it.
pub enum Standing {
    /// Kept by this open store.
    Live(Box<dyn Park>),
    /// Written down when the store was last closed and read back when it
    /// opened, with the count of outbox writes it then stood at (that of
    /// the store's open: 0).
    Parked { bytes: Vec<u8>, outbox_writes: u64 },
}

/// The trackers of one open store.
#[derive(Default)]
pub(in crate::store) struct Changes {
    /// The stored journeys are every recipient's as derived on the day
    /// under the policy fingerprint, but for `since.touched`.
    pub(super) journeys: Option<(Date, u64, Since)>,
    /// The identity pass's state (its match keys) and what changed since.
    pub(super) identity: Option<(Since, Box<dyn Any + Send>)>,
    /// The opt-in counts at a version.
    pub(super) opt_ins: Option<(u64, OptIns)>,
    /// The last committed planning run's standing (an opaque state the
    /// planner keeps here for its incremental re-plan) and what changed
    /// since.
    pub(super) plan: Option<(Since, Standing)>,
}

/// What a change did to the opt-in counts: `add` minus `sub`.
#[derive(Clone, Copy, Debug, Default)]
pub(in crate::store) struct OptInsDelta {
    pub(in crate::store) add: OptIns,
    pub(in crate::store) sub: OptIns,
}

impl OptInsDelta {
    pub(super) fn apply(&self, o: OptIns) -> Option<OptIns> {
        Some(OptIns {
            email: (o.email + self.add.email).checked_sub(self.sub.email)?,
            phone: (o.phone + self.add.phone).checked_sub(self.sub.phone)?,
            post_refused: (o.post_refused + self.add.post_refused)
                .checked_sub(self.sub.post_refused)?,
        })
    }
}

/// Counts one person's standing statements.
pub(in crate::store) fn count_person(o: &mut OptIns, standing: &[Option<Consent>; 3]) {
    for c in standing.iter().flatten() {
        match (c.channel, c.granted) {
            (Channel::Email, true) => o.email += 1,
            (Channel::Phone, true) => o.phone += 1,
            (Channel::Post, false) => o.post_refused += 1,
            _ => {}
        }
    }
}

/// The statement that stands per channel among `statements`.
pub(in crate::store) fn standing<'a>(
    statements: impl IntoIterator<Item = &'a Consent>,
) -> [Option<Consent>; 3] {
    let mut out: [Option<Consent>; 3] = [None, None, None];
    for c in statements {
        let slot = &mut out[c.channel.index()];
        if slot.as_ref().is_none_or(|old| consent::prevails(c, old)) {
            *slot = Some(c.clone());
        }
    }
    out
}
