//! The change bus: writers say what changed, subscribed consoles learn of
//! it and re-read only that.
//!
//! Publishing is synchronous and cheap (one `broadcast` send, nothing when
//! nobody listens) and happens once per write group at the write points
//! (the store's outbox writers, imports, merges, approvals, pauses, policy
//! loads, the audit log), never per message. A subscriber that falls behind
//! the bus's capacity loses the details, not the fact: it is told that
//! everything changed ([`Pending::lagged`]).

use std::collections::BTreeSet;

use tokio::sync::broadcast;
use touchpoint_common::protocol::{Changes, Scope, Topic};
use touchpoint_common::TenantId;

/// Events a subscriber may be behind before it counts as lagging.
const CAPACITY: usize = 1024;

/// A set of topics, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Topics(u8);

fn bit(t: Topic) -> u8 {
    1 << (Topic::ALL.iter().position(|x| *x == t).unwrap_or(0) as u8)
}

impl Topics {
    pub const NONE: Topics = Topics(0);

    pub fn of(topics: &[Topic]) -> Self {
        Topics(topics.iter().fold(0, |acc, t| acc | bit(*t)))
    }

    pub fn all() -> Self {
        Self::of(&Topic::ALL)
    }

    pub fn with(self, other: Topics) -> Self {
        Topics(self.0 | other.0)
    }

    pub fn contains(self, t: Topic) -> bool {
        self.0 & bit(t) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// In [`Topic::ALL`] order.
    pub fn to_vec(self) -> Vec<Topic> {
        Topic::ALL
            .into_iter()
            .filter(|t| self.contains(*t))
            .collect()
    }
}

/// Whose change a change is: which subscribers may hear of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// A change that concerns every tenant (brand material, the policy):
    /// every subscriber.
    Everyone,
    /// A change of one tenant's data: subscribers whose scope has it.
    Tenant(TenantId),
    /// A change of something only a scope over every tenant is shown (the
    /// relay, material that names no tenant): only those subscribers.
    ScopeOverAll,
    /// A change only a scope over every tenant and the user `uid` are
    /// shown (an audit entry about no tenant: its author sees it too).
    ScopeOverAllAnd(u32),
}

impl Audience {
    /// The tenant, or everyone when the change is about none in particular.
    pub fn of(tenant: Option<&TenantId>) -> Self {
        match tenant {
            Some(t) => Audience::Tenant(t.clone()),
            None => Audience::Everyone,
        }
    }
}

/// One write group's change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub topics: Topics,
    pub audience: Audience,
}

/// The daemon's change bus.
pub struct Events {
    tx: broadcast::Sender<Event>,
    /// Per tenant, how many write groups its outbox has taken since the
    /// start ([`Events::outbox_written`]): what the dispatcher compares to
    /// leave a store it found with nothing to do closed until it has, and
    /// what a kept outbox summary is good for (`store/summary.rs`).
    outbox: std::sync::Mutex<std::collections::HashMap<TenantId, u64>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        Self {
            tx: broadcast::Sender::new(CAPACITY),
            outbox: Default::default(),
        }
    }

    /// Counts a write group of `tenant`'s outbox (its one writer calls
    /// this for every group, whoever listens; so do the response months'
    /// write, a tenant's removal and the close of a store in trouble).
    pub fn outbox_written(&self, tenant: &TenantId) {
        let mut m = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(tenant.clone()).or_insert(0) += 1;
    }

    /// How many write groups `tenant`'s outbox has taken since the start.
    pub fn outbox_writes(&self, tenant: &TenantId) -> u64 {
        let m = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        m.get(tenant).copied().unwrap_or(0)
    }

    /// Says that `topics` changed, for `tenant` or for no tenant in particular.
    pub fn publish(&self, topics: &[Topic], tenant: Option<&TenantId>) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        self.publish_to(topics, Audience::of(tenant));
    }

    /// Says that `topics` changed, to the subscribers `audience` names.
    pub fn publish_to(&self, topics: &[Topic], audience: Audience) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self.tx.send(Event {
            topics: Topics::of(topics),
            audience,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// What a subscriber has yet to be told, gathered between two `Changed`.
#[derive(Debug, Default)]
pub struct Pending {
    topics: Topics,
    tenants: BTreeSet<TenantId>,
    lagged: bool,
}

impl Pending {
    /// Adds an event if it concerns the subscriber `uid` with `scope`: a
    /// change only about a tenant outside it, or about what only a scope
    /// over every tenant is shown, is left out. Returns whether it was
    /// added.
    pub fn add(&mut self, e: &Event, scope: &Scope, uid: u32) -> bool {
        match &e.audience {
            Audience::Everyone => {}
            Audience::Tenant(t) => {
                if !scope.allows(t) {
                    return false;
                }
                self.tenants.insert(t.clone());
            }
            Audience::ScopeOverAll => {
                if !matches!(scope, Scope::All) {
                    return false;
                }
            }
            Audience::ScopeOverAllAnd(author) => {
                if !matches!(scope, Scope::All) && *author != uid {
                    return false;
                }
            }
        }
        self.topics = self.topics.with(e.topics);
        true
    }

    /// The subscriber missed events: every topic, no tenants (re-read all).
    pub fn lagged(&mut self) {
        self.lagged = true;
        self.topics = Topics::all();
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// The changes gathered so far, and a fresh start.
    pub fn take(&mut self) -> Option<Changes> {
        if self.is_empty() {
            return None;
        }
        let p = std::mem::take(self);
        Some(Changes {
            topics: p.topics.to_vec(),
            tenants: if p.lagged {
                Vec::new()
            } else {
                p.tenants.into_iter().collect()
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::new(s).unwrap()
    }

    #[test]
    fn gathers_topics_and_tenants_in_scope_only() {
        let scope = Scope::Tenants(vec![t("d001")]);
        let mut p = Pending::default();
        assert!(p.add(
            &Event {
                topics: Topics::of(&[Topic::Outbox, Topic::Costs]),
                audience: Audience::Tenant(t("d001")),
            },
            &scope,
            1000
        ));
        assert!(!p.add(
            &Event {
                topics: Topics::of(&[Topic::Tenants]),
                audience: Audience::Tenant(t("d002")),
            },
            &scope,
            1000
        ));
        assert!(p.add(
            &Event {
                topics: Topics::of(&[Topic::Policy]),
                audience: Audience::Everyone,
            },
            &scope,
            1000
        ));
        // The relay went down: for those shown it only.
        let relay = Event {
            topics: Topics::of(&[Topic::Dispatch]),
            audience: Audience::ScopeOverAll,
        };
        assert!(!p.add(&relay, &scope, 1000));
        assert!(Pending::default().add(&relay, &Scope::All, 1000));
        // Someone else's audit entry about no tenant: not for this scope;
        // one's own is.
        let audit = |uid| Event {
            topics: Topics::of(&[Topic::Audit]),
            audience: Audience::ScopeOverAllAnd(uid),
        };
        assert!(!p.add(&audit(4242), &scope, 1000));
        assert!(Pending::default().add(&audit(4242), &Scope::All, 1000));
        assert!(Pending::default().add(&audit(1000), &scope, 1000));
        let c = p.take().unwrap();
        assert_eq!(c.topics, vec![Topic::Outbox, Topic::Costs, Topic::Policy]);
        assert_eq!(c.tenants, vec![t("d001")]);
        assert!(p.take().is_none());
    }

    #[test]
    fn a_lagging_subscriber_rereads_everything() {
        let mut p = Pending::default();
        p.add(
            &Event {
                topics: Topics::of(&[Topic::Outbox]),
                audience: Audience::Tenant(t("d001")),
            },
            &Scope::All,
            0,
        );
        p.lagged();
        let c = p.take().unwrap();
        assert_eq!(c.topics, Topic::ALL.to_vec());
        assert!(c.tenants.is_empty());
    }

    #[tokio::test]
    async fn publish_reaches_subscribers_and_costs_nothing_without_them() {
        let bus = Events::new();
        bus.publish(&[Topic::Audit], None);
        let mut rx = bus.subscribe();
        bus.publish(&[Topic::Dispatch], Some(&t("d003")));
        let e = rx.recv().await.unwrap();
        assert_eq!(e.audience, Audience::Tenant(t("d003")));
        assert!(e.topics.contains(Topic::Dispatch) && !e.topics.contains(Topic::Audit));
    }
}
