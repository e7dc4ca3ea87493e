//! Consent: which statement speaks for a person on a channel, and whether it
//! lets us write to them. The one place this is decided: the planner (when
//! it plans, when it revises, for campaign segments) and dispatch (at send
//! time, and for a letter in place of a failed email) both call it, so a
//! message is never planned on one reading and cancelled on another.
//!
//! A person may have several customer numbers (identity merges). Their
//! statements on a channel are taken together: the latest one stands, and a
//! withdrawal stands against a grant made at the same moment. So a
//! withdrawal under any of the numbers is overridden only by a grant made
//! later, under any of them, which is the person changing their mind.

use std::collections::HashMap;

use touchpoint_common::domain::{Channel, Consent, Timestamp};
use touchpoint_common::policy::ConsentRule;
use touchpoint_common::Date;

use super::recipients::survivor;

pub use touchpoint_common::consent::{prevails, standing};

/// Whether the statement that stands (if any) lets us use `channel` under
/// the brand's rule for it: `Ok` with the reason, or `Err` with why not.
/// `recipient` is the customer number the message goes to; a statement made
/// under another of the person's numbers names that number.
pub fn verdict(
    rule: ConsentRule,
    channel: Channel,
    standing: Option<&Consent>,
    recipient: &str,
) -> Result<String, String> {
    let Some(s) = standing else {
        return match rule {
            ConsentRule::OptOut => Ok(format!("{channel}: allowed, no objection on record")),
            ConsentRule::OptIn => Err(format!("{channel}: no consent on record")),
        };
    };
    let of = if s.customer_no == recipient {
        String::new()
    } else {
        format!("; customer {}", s.customer_no)
    };
    let what = if s.granted {
        "consent given"
    } else {
        "consent withdrawn"
    };
    let text = format!("{channel}: {what} {} ({}{of})", day_of(s.at), s.source);
    if s.granted {
        Ok(text)
    } else {
        Err(text)
    }
}

fn day_of(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.0)
        .map(|d| Date::from(d.date_naive()).to_string())
        .unwrap_or_else(|| "?".into())
}

/// Who is one person: the customer numbers merged into each survivor,
/// resolved through chains as the planner resolves them.
#[derive(Debug, Default)]
pub struct People {
    survivor_of: HashMap<String, String>,
    merged: HashMap<String, Vec<String>>,
}

impl People {
    /// From the tenant's active merges (merged number → survivor).
    pub fn from_merges(merged_into: &HashMap<String, String>) -> Self {
        let mut people = People::default();
        for no in merged_into.keys() {
            let root = survivor(merged_into, no).to_string();
            if root == *no {
                continue;
            }
            people
                .merged
                .entry(root.clone())
                .or_default()
                .push(no.clone());
            people.survivor_of.insert(no.clone(), root);
        }
        for numbers in people.merged.values_mut() {
            numbers.sort();
        }
        people
    }

    /// Every customer number of the person `customer_no` stands for: the
    /// survivor first, then the numbers merged into it.
    pub fn numbers_of<'a>(&'a self, customer_no: &'a str) -> Vec<&'a str> {
        let root = self
            .survivor_of
            .get(customer_no)
            .map_or(customer_no, String::as_str);
        let mut out = vec![root];
        if let Some(merged) = self.merged.get(root) {
            out.extend(merged.iter().map(String::as_str));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn said(no: &str, granted: bool, at: i64, source: &str) -> Consent {
        Consent {
            customer_no: no.into(),
            channel: Channel::Email,
            granted,
            source: source.into(),
            at: Timestamp(at),
        }
    }

    #[test]
    fn the_latest_stands_and_a_withdrawal_wins_a_tie_in_any_order() {
        let cases = [
            (
                vec![said("K1", false, 1, "a"), said("K2", true, 2, "b")],
                ("K2", true),
            ),
            (
                vec![said("K1", true, 1, "a"), said("K2", false, 2, "b")],
                ("K2", false),
            ),
            (
                vec![said("K1", false, 2, "a"), said("K2", true, 2, "b")],
                ("K1", false),
            ),
            (
                vec![said("K1", true, 2, "a"), said("K2", false, 2, "b")],
                ("K2", false),
            ),
            (
                vec![said("K1", true, 2, "b"), said("K2", true, 2, "a")],
                ("K1", true),
            ),
        ];
        for (mut statements, (no, granted)) in cases {
            for _ in 0..2 {
                let s = standing(&statements).unwrap();
                assert_eq!(
                    (s.customer_no.as_str(), s.granted),
                    (no, granted),
                    "{statements:?}"
                );
                statements.reverse();
            }
        }
        assert_eq!(standing(&[]), None);
    }

    #[test]
    fn the_rule_reads_the_standing_statement() {
        let day = Timestamp::from_date(Date::from_ymd(2025, 6, 1).unwrap()).0;
        let yes = said("K2", true, day, "form");
        let no = said("K1", false, day, "import:kunden.csv");
        assert_eq!(
            verdict(ConsentRule::OptIn, Channel::Email, Some(&yes), "K1"),
            Ok("email: consent given 2025-06-01 (form; customer K2)".into())
        );
        assert_eq!(
            verdict(ConsentRule::OptOut, Channel::Post, Some(&no), "K1"),
            Err("post: consent withdrawn 2025-06-01 (import:kunden.csv)".into())
        );
        assert_eq!(
            verdict(ConsentRule::OptIn, Channel::Email, None, "K1"),
            Err("email: no consent on record".into())
        );
        assert_eq!(
            verdict(ConsentRule::OptOut, Channel::Post, None, "K1"),
            Ok("post: allowed, no objection on record".into())
        );
    }

    #[test]
    fn a_person_is_the_survivor_and_everyone_merged_into_it_through_chains() {
        let merges: HashMap<String, String> = [("K3", "K2"), ("K2", "K1"), ("K9", "K8")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let people = People::from_merges(&merges);
        for no in ["K1", "K2", "K3"] {
            assert_eq!(people.numbers_of(no), ["K1", "K2", "K3"], "{no}");
        }
        assert_eq!(people.numbers_of("K9"), ["K8", "K9"]);
        assert_eq!(people.numbers_of("K5"), ["K5"]);
    }
}
