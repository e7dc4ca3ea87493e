//! Money: an amount in euro cents, and how policy files write one.
//!
//! Imports nothing from this crate: policy, postage and both binaries
//! speak it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// An amount of money in euro cents. In files: `12.5`, `12`, or `"12.50"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Money(pub i64);

impl Money {
    pub fn cents(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // bincode (records, frames) is not self-describing: the cents as
        // serialized, not the forms a person writes in a policy file.
        if !d.is_human_readable() {
            return i64::deserialize(d).map(Money);
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Float(f64),
            Text(String),
        }
        let err = |what: &dyn fmt::Display| {
            serde::de::Error::custom(format!(
                "{what} is not an amount in euro with at most two decimals (like 12.50)"
            ))
        };
        let cents = match Raw::deserialize(d)? {
            Raw::Int(i) => i.checked_mul(100).ok_or_else(|| err(&i))?,
            Raw::Float(x) => {
                let c = (x * 100.0).round();
                if !x.is_finite() || (x * 100.0 - c).abs() > 1e-6 || c.abs() > 1e15 {
                    return Err(err(&x));
                }
                c as i64
            }
            Raw::Text(s) => parse_money(&s).ok_or_else(|| err(&format!("{s:?}")))?,
        };
        if cents < 0 {
            return Err(serde::de::Error::custom(format!(
                "must not be negative, got {}",
                Money(cents)
            )));
        }
        Ok(Money(cents))
    }
}

fn parse_money(s: &str) -> Option<i64> {
    let s = s
        .trim()
        .trim_end_matches("EUR")
        .trim_end_matches('€')
        .trim();
    let (whole, frac) = s.split_once(['.', ',']).unwrap_or((s, ""));
    if whole.is_empty() || frac.len() > 2 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_cents = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse::<i64>().ok()?,
    };
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac_cents)
}
