//! Which occasion a send of an imported send history covered
//! (`crate::import::history`): the occasion this planner would have sent
//! it for on its day, found by the planner's own rules on the data stored
//! now, so that its key is the key a planning run makes and the occasion
//! is not planned again.

use std::collections::HashMap;
use std::sync::Arc;

use touchpoint_common::consent::survivor;
use touchpoint_common::outbox::Occasion;

use super::occasions::{self, Window};
use super::recipients;
use crate::import::history::Occasions;
use crate::import::parse::Sent;
use crate::policy::PolicyHandle;
use crate::store::{StoreError, TenantStore};

/// How far after a send its occasion may fall due besides the service's
/// lead time: the previous system's lead times are not ours, and a
/// reminder sent three months early still reminded of that occasion.
pub const HISTORY_SLACK_DAYS: u32 = 90;

/// [`Occasions`] by the planner's rules, under the policy in force.
pub struct Covered {
    pub policies: Arc<PolicyHandle>,
}

impl Occasions for Covered {
    fn covered(
        &self,
        store: &TenantStore,
        sends: &[&Sent],
    ) -> Result<Vec<Option<Occasion>>, StoreError> {
        if sends.is_empty() {
            return Ok(Vec::new());
        }
        let set = self.policies.current();
        let brand = &set.brand;
        let merges = store.merge_map()?;
        let recipients = recipients::load(store)?;
        let index: HashMap<&str, usize> = recipients
            .iter()
            .enumerate()
            .map(|(i, r)| (r.customer.customer_no.as_str(), i))
            .collect();
        let mut out = Vec::with_capacity(sends.len());
        let mut found = Vec::new();
        for s in sends {
            let (Some(service), Some(&i)) = (
                brand.services.get(&s.service),
                index.get(survivor(&merges, &s.customer_no)),
            ) else {
                out.push(None);
                continue;
            };
            let window = Window {
                today: s.date,
                horizon_days: brand.planning.horizon_days.max(HISTORY_SLACK_DAYS),
            };
            found.clear();
            occasions::find(
                &recipients[i],
                &s.service,
                service,
                service.lead_days,
                brand,
                &window,
                &mut found,
            );
            // The send's vehicle when it names one; else the first due.
            found.sort_by_key(|o| o.due);
            let pick = found
                .iter()
                .find(|o| s.vin.is_empty() || o.vin.as_deref() == Some(s.vin.as_str()))
                .cloned();
            out.push(pick);
        }
        Ok(out)
    }
}
