//! Who is on the other end of the control socket (M11): the peer's Unix
//! credentials, read by the kernel (SO_PEERCRED), mapped through the
//! `[[access]]` rules of the daemon configuration to a role and a tenant scope.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Group, Uid, User};
use touchpoint_common::config::AccessRule;
use touchpoint_common::protocol::{Identity, Request, Role, Scope};
use touchpoint_common::TenantId;

pub struct Access {
    rules: Vec<AccessRule>,
    daemon_uid: u32,
    /// Answers of the last few seconds by (uid, gid): a flood of
    /// connections, refused or not, asks the name service once.
    recent: Mutex<Recent>,
}

/// Identities (or refusals) by (uid, gid), with when they were looked up.
type Recent = HashMap<(u32, u32), (Instant, Result<Identity, String>)>;

/// How long an identity (or a refusal) is reused without asking the name
/// service again: a change of groups or of the passwd entry counts after
/// at most this long.
const REMEMBER: Duration = Duration::from_secs(10);
/// Peers remembered at once.
const REMEMBERED: usize = 4_096;

impl Access {
    pub fn new(rules: Vec<AccessRule>) -> Self {
        Self {
            rules,
            daemon_uid: Uid::current().as_raw(),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Maps a peer to an identity, or says why it has none. Without any
    /// rule, root and the daemon's own user are admins and nobody else gets
    /// in. Blocking: it may ask the system's name service.
    pub fn identify(&self, uid: u32, gid: u32) -> Result<Identity, String> {
        let now = Instant::now();
        if let Some((at, answer)) = self.lock().get(&(uid, gid)) {
            if now.duration_since(*at) < REMEMBER {
                return answer.clone();
            }
        }
        let answer = self.look_up(uid, gid);
        let mut recent = self.lock();
        if recent.len() >= REMEMBERED {
            recent.retain(|_, (at, _)| now.duration_since(*at) < REMEMBER);
            if recent.len() >= REMEMBERED {
                recent.clear();
            }
        }
        recent.insert((uid, gid), (now, answer.clone()));
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn look_up(&self, uid: u32, gid: u32) -> Result<Identity, String> {
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let name = user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| format!("uid{uid}"));
        let identity = |role, scope| Identity {
            uid,
            gid,
            user: name.clone(),
            role,
            scope,
        };
        if self.rules.is_empty() {
            if uid == 0 || uid == self.daemon_uid {
                return Ok(identity(Role::Admin, Scope::All));
            }
            return Err(format!(
                "{name} (uid {uid}) has no access: the daemon configuration has no [[access]] rules, so only root and the daemon's own user may connect"
            ));
        }
        let groups = user
            .as_ref()
            .and_then(|u| {
                let cname = std::ffi::CString::new(u.name.as_str()).ok()?;
                nix::unistd::getgrouplist(&cname, Gid::from_raw(gid)).ok()
            })
            .unwrap_or_else(|| vec![Gid::from_raw(gid)]);
        let in_group = |g: u32| g == gid || groups.iter().any(|x| x.as_raw() == g);
        for rule in &self.rules {
            let mut matched = true;
            if let Some(u) = rule.uid {
                matched &= u == uid;
            }
            if let Some(u) = &rule.user {
                matched &= *u == name;
            }
            if let Some(g) = rule.gid {
                matched &= in_group(g);
            }
            if let Some(g) = &rule.group {
                matched &= Group::from_name(g)
                    .ok()
                    .flatten()
                    .is_some_and(|g| in_group(g.gid.as_raw()));
            }
            if matched {
                // The brand reaches no tenant: everything that names one is
                // refused by scope as well as by role.
                let scope = match rule.role {
                    Role::Brand => Scope::Tenants(Vec::new()),
                    _ => scope_of(&rule.tenants),
                };
                return Ok(identity(rule.role, scope));
            }
        }
        Err(format!("{name} (uid {uid}) has no access: no [[access]] rule of the daemon configuration matches"))
    }
}

/// Tenant lists are validated when the configuration is read; an entry that
/// is not a valid id can only be "*".
pub fn scope_of(tenants: &[String]) -> Scope {
    if tenants.iter().any(|t| t == "*") {
        return Scope::All;
    }
    Scope::Tenants(
        tenants
            .iter()
            .filter_map(|t| TenantId::new(t.as_str()).ok())
            .collect(),
    )
}

/// Whether a role may make a request at all; tenant scope is checked separately.
pub fn role_allows(role: Role, request: &Request) -> bool {
    role.allows(request)
}

/// What a request reaches, as far as tenant scope goes. [`reach`] names one
/// for every request without a wildcard, so a new request cannot skip the
/// scope check: the compiler asks which it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach<'a> {
    /// Nothing of any tenant (a ping, the chunks of an upload whose begin
    /// was checked).
    Nothing,
    /// Whatever the caller's scope allows: the handler shows and touches
    /// only tenants in scope (status, lists, the overview, the audit log,
    /// the change feed, a call-centre file that names many tenants).
    Filtered,
    /// One tenant's data.
    Tenant(&'a TenantId),
    /// The named tenant, or every tenant in the caller's scope when `None`.
    TenantOrFiltered(Option<&'a TenantId>),
    /// These tenants (each must be in scope), or every tenant in the
    /// caller's scope when none is named.
    TenantsOrFiltered(&'a [TenantId]),
    /// A change that applies to every tenant at once.
    Everyone,
    /// Every dealer's figures pooled under the brand's disclosure rule:
    /// no tenant's own figure is in the answer, so no scope is needed
    /// (the role decides who may ask).
    Pooled,
    /// Brand material by name: `slots/<tenant>` is that tenant's; anything
    /// else applies to every tenant, so changing it needs a scope over all.
    Material { name: &'a str, change: bool },
    /// A proposal: as the material it proposes; a preview also reaches the
    /// tenant whose customer it shows.
    Proposal {
        id: u64,
        change: bool,
        tenant: Option<&'a TenantId>,
    },
}

/// What `request` reaches. No wildcard arm: see [`Reach`].
pub fn reach(request: &Request) -> Reach<'_> {
    match request {
        Request::Ping | Request::UploadChunk { .. } | Request::UploadEnd | Request::UploadAbort => {
            Reach::Nothing
        }
        Request::Status
        | Request::ListTenants
        | Request::DispatchStatus
        | Request::CallOutcomes { .. }
        | Request::Proposals { .. }
        | Request::Templates { name: None }
        | Request::Overview { .. }
        | Request::Subscribe => Reach::Filtered,
        Request::Tenant { tenant }
        | Request::UploadBegin { tenant, .. }
        | Request::Imports { tenant, .. }
        | Request::Merges { tenant, .. }
        | Request::UndoMerge { tenant, .. }
        | Request::Message { tenant, .. }
        | Request::MessageAction { tenant, .. }
        | Request::Content { tenant, .. }
        | Request::Responses { tenant, .. }
        | Request::Customer { tenant, .. }
        | Request::Erase { tenant, .. }
        | Request::Reinstate { tenant, .. }
        | Request::Object { tenant, .. }
        | Request::ExportCustomer { tenant, .. }
        | Request::EraseTenant { tenant, .. } => Reach::Tenant(tenant),
        // Every dealer's store is copied or read.
        Request::Backup { .. } | Request::VerifyBackup { .. } => Reach::Everyone,
        Request::Audit { tenant, .. }
        | Request::Plan { tenant, .. }
        | Request::RunBatches { tenant }
        | Request::Costs { tenant, .. } => Reach::TenantOrFiltered(tenant.as_ref()),
        Request::Queue { filter, .. } => Reach::TenantsOrFiltered(&filter.tenants),
        Request::Report { query } if query.pooled => Reach::Pooled,
        // Learned values are pooled under the same rule: no tenant's own
        // figure; a freeze or reset changes what every tenant is planned with.
        Request::Learning { .. } => Reach::Pooled,
        Request::LearningAction { .. } | Request::RetentionRun => Reach::Everyone,
        Request::Report { query } => Reach::TenantOrFiltered(query.tenant.as_ref()),
        Request::Pause { scope } | Request::Resume { scope } => match &scope.tenant {
            Some(t) => Reach::Tenant(t),
            None => Reach::Everyone,
        },
        Request::Propose { template, .. } | Request::ProposeRollback { template, .. } => {
            Reach::Material {
                name: template,
                change: true,
            }
        }
        Request::Templates { name: Some(name) } => Reach::Material {
            name,
            change: false,
        },
        Request::Proposal { id } => Reach::Proposal {
            id: *id,
            change: false,
            tenant: None,
        },
        Request::Preview { id, tenant, .. } => Reach::Proposal {
            id: *id,
            change: false,
            tenant: Some(tenant),
        },
        Request::Approve { id, .. } | Request::Reject { id, .. } => Reach::Proposal {
            id: *id,
            change: true,
            tenant: None,
        },
    }
}

/// A request refused for its tenant scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfScope {
    /// The tenant it reached, for the audit trail (none when it reached
    /// every tenant).
    pub tenant: Option<TenantId>,
    pub reason: String,
}

/// Whose a piece of brand material is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaterialOwner {
    /// A dealer's slots.
    Tenant(TenantId),
    /// Brand material that applies to every tenant.
    Everyone,
    /// A `slots/` name that names no valid tenant.
    Nobody,
}

/// Whose the material `name` is.
pub fn material_owner(name: &str) -> MaterialOwner {
    if crate::approvals::slots::is_slots(name) {
        return match crate::approvals::slots::tenant_of(name) {
            Some(t) => MaterialOwner::Tenant(t),
            None => MaterialOwner::Nobody,
        };
    }
    MaterialOwner::Everyone
}

/// Whether `scope` may see (or, with `change`, change) the material `name`.
pub fn material_in_scope(scope: &Scope, name: &str, change: bool) -> Result<(), OutOfScope> {
    if matches!(scope, Scope::All) {
        return Ok(());
    }
    match material_owner(name) {
        MaterialOwner::Tenant(t) if scope.allows(&t) => Ok(()),
        MaterialOwner::Tenant(t) => Err(OutOfScope {
            reason: format!("tenant {t} is outside your scope"),
            tenant: Some(t),
        }),
        MaterialOwner::Everyone if !change => Ok(()),
        MaterialOwner::Everyone => Err(OutOfScope {
            tenant: None,
            reason: format!(
                "brand material {name} applies to every tenant: changing it needs a scope over every tenant"
            ),
        }),
        MaterialOwner::Nobody => Err(OutOfScope {
            tenant: None,
            reason: "that brand material names no tenant of your scope".to_string(),
        }),
    }
}

/// The tenant scope check every request passes before it is handled.
/// `proposal_material` names the material a proposal is for (`None`: no
/// such proposal, which the handler reports).
pub fn check_scope(
    scope: &Scope,
    request: &Request,
    proposal_material: impl FnOnce(u64) -> Option<String>,
) -> Result<(), OutOfScope> {
    let tenant = |t: &TenantId| {
        if scope.allows(t) {
            Ok(())
        } else {
            Err(OutOfScope {
                tenant: Some(t.clone()),
                reason: format!("tenant {t} is outside your scope"),
            })
        }
    };
    match reach(request) {
        Reach::Nothing | Reach::Filtered | Reach::TenantOrFiltered(None) | Reach::Pooled => Ok(()),
        Reach::Tenant(t) | Reach::TenantOrFiltered(Some(t)) => tenant(t),
        Reach::TenantsOrFiltered(list) => list.iter().try_for_each(tenant),
        Reach::Everyone if matches!(scope, Scope::All) => Ok(()),
        Reach::Everyone => Err(OutOfScope {
            tenant: None,
            reason: format!(
                "{} of every tenant needs a scope over every tenant; name a tenant",
                request.name()
            ),
        }),
        Reach::Material { name, change } => material_in_scope(scope, name, change),
        Reach::Proposal {
            id,
            change,
            tenant: t,
        } => {
            if let Some(t) = t {
                tenant(t)?;
            }
            if matches!(scope, Scope::All) {
                return Ok(());
            }
            match proposal_material(id) {
                Some(name) => material_in_scope(scope, &name, change),
                None => Ok(()),
            }
        }
    }
}

/// The tenant a request is about, for the audit trail.
pub fn tenant_of(request: &Request) -> Option<TenantId> {
    match reach(request) {
        Reach::Tenant(t) | Reach::TenantOrFiltered(Some(t)) => Some(t.clone()),
        Reach::TenantsOrFiltered([t]) => Some(t.clone()),
        Reach::Proposal { tenant, .. } => tenant.cloned(),
        Reach::Material { name, .. } => match material_owner(name) {
            MaterialOwner::Tenant(t) => Some(t),
            MaterialOwner::Everyone | MaterialOwner::Nobody => None,
        },
        Reach::Nothing
        | Reach::Filtered
        | Reach::TenantOrFiltered(None)
        | Reach::TenantsOrFiltered(_)
        | Reach::Everyone
        | Reach::Pooled => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(uid: Option<u32>, role: Role, tenants: &[&str]) -> AccessRule {
        AccessRule {
            user: None,
            uid,
            group: None,
            gid: None,
            role,
            tenants: tenants.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn without_rules_only_root_and_self_are_admins() {
        let a = Access::new(vec![]);
        assert_eq!(a.identify(0, 0).expect("root").role, Role::Admin);
        let me = Uid::current().as_raw();
        assert_eq!(a.identify(me, 0).expect("self").role, Role::Admin);
        if me != 4242 {
            let err = a.identify(4242, 4242).expect_err("stranger");
            assert!(
                err.contains("uid 4242") && err.contains("no access"),
                "{err}"
            );
        }
    }

    #[test]
    fn first_matching_rule_wins_and_scopes_tenants() {
        let a = Access::new(vec![
            rule(Some(1000), Role::Operator, &["d001", "d002"]),
            rule(None, Role::ReadOnly, &["*"]),
        ]);
        let op = a.identify(1000, 1000).expect("op");
        assert_eq!(op.role, Role::Operator);
        let d001 = TenantId::new("d001").expect("id");
        let d003 = TenantId::new("d003").expect("id");
        assert!(op.scope.allows(&d001) && !op.scope.allows(&d003));
        let other = a.identify(1001, 1001).expect("fallback");
        assert_eq!((other.role, other.scope), (Role::ReadOnly, Scope::All));
    }

    #[test]
    fn roles_gate_state_changes() {
        let t = TenantId::new("d001").expect("id");
        let undo = Request::UndoMerge {
            tenant: t,
            merge_id: 1,
        };
        assert!(role_allows(Role::Operator, &undo));
        assert!(!role_allows(Role::ReadOnly, &undo));
        assert!(!role_allows(Role::Reviewer, &undo));
        assert!(role_allows(Role::ReadOnly, &Request::ListTenants));
    }
}
