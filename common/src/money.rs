//! Money: an amount in euro cents, and how policy files write one.
//!
//! Imports nothing from this crate: policy, postage and both binaries
//! speak it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of money in euro cents. In files: `12.5`, `12`, or `"12.50"`.
/// Serialized as the cents where the format is binary (records, frames) and
/// as `{"amount": "12.30", "currency": "EUR"}` where it is human-readable
/// (`--json`); [`cents`] does the same for amounts kept as plain `i64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

/// The one currency amounts are kept in.
pub const CURRENCY: &str = "EUR";

/// What a human-readable format shows of an amount.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Amount {
    /// Decimal euro as text (`"12.30"`): no floating point on the way.
    amount: String,
    currency: String,
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            Amount {
                amount: self.to_string(),
                currency: CURRENCY.into(),
            }
            .serialize(s)
        } else {
            s.serialize_i64(self.0)
        }
    }
}

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
            Amount(Amount),
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
            Raw::Amount(a) => {
                if a.currency != CURRENCY {
                    return Err(serde::de::Error::custom(format!(
                        "currency {:?}: amounts are in {CURRENCY}",
                        a.currency.chars().take(8).collect::<String>()
                    )));
                }
                parse_money(&a.amount).ok_or_else(|| err(&format!("{:?}", a.amount)))?
            }
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

/// An amount kept as cents in a plain `i64` field, serialized as [`Money`]
/// is: `#[serde(with = "crate::money::cents")]`; [`cents::option`] for an
/// `Option<i64>`.
pub mod cents {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::money::{parse_money, Amount, Money, CURRENCY};

    pub fn serialize<S: Serializer>(cents: &i64, s: S) -> Result<S::Ok, S::Error> {
        Money(*cents).serialize(s)
    }

    /// The binary form's cents, or the human-readable form's amount object,
    /// which may be negative here (a difference, a return), unlike a
    /// [`Money`] of a policy file.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        if !d.is_human_readable() {
            return i64::deserialize(d);
        }
        let a = Amount::deserialize(d)?;
        if a.currency != CURRENCY {
            return Err(serde::de::Error::custom(format!(
                "currency {:?}: amounts are in {CURRENCY}",
                a.currency.chars().take(8).collect::<String>()
            )));
        }
        let (sign, digits) = match a.amount.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, a.amount.as_str()),
        };
        parse_money(digits).map(|c| sign * c).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{:?} is not an amount in euro with at most two decimals (like 12.50)",
                a.amount.chars().take(32).collect::<String>()
            ))
        })
    }

    pub mod option {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use crate::money::Money;

        pub fn serialize<S: Serializer>(cents: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            cents.map(Money).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            #[derive(Deserialize)]
            struct Cents(#[serde(with = "crate::money::cents")] i64);
            Option::<Cents>::deserialize(d).map(|c| c.map(|Cents(c)| c))
        }
    }
}

/// A computed amount of cents kept as `Option<f64>` (a cost per response):
/// rounded to the cent and written as [`Money`] is where the format is
/// human-readable, the `f64` as it is where it is binary. For
/// `#[serde(with = "crate::money::computed")]`.
pub mod computed {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::money::Money;

    pub fn serialize<S: Serializer>(cents: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            cents.map(|c| Money(c.round() as i64)).serialize(s)
        } else {
            cents.serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        if !d.is_human_readable() {
            return Option::<f64>::deserialize(d);
        }
        #[derive(Deserialize)]
        struct Cents(#[serde(with = "crate::money::cents")] i64);
        Option::<Cents>::deserialize(d).map(|c| c.map(|Cents(c)| c as f64))
    }
}
