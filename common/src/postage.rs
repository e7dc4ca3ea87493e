//! The postage table of the brand policy (`[postage]` in `brand.toml`): what a
//! letter weighs, which weight class it falls in, and which bulk discount its
//! sorting region earns in a batch.
//!
//! ```toml
//! [postage]
//! sheet_grams = 5            # one A4 sheet, 80 g/m²
//! envelope_grams = 5         # DL window envelope
//! region_digits = 2          # postcode prefix that forms a sorting region (Leitregion)
//! classes = [ { name = "Standardbrief", max_grams = 20, price = 0.95 },
//!             { name = "Kompaktbrief", max_grams = 50, price = 1.10 },
//!             { name = "Großbrief", max_grams = 500, price = 1.80 } ]
//! discounts = [ { name = "Teilleistung 250", min_letters = 250, percent = 10 },
//!               { name = "Teilleistung 1000", min_letters = 1000, percent = 18 } ]
//! ```
//!
//! Every page is printed on a sheet of its own (simplex), so a letter of `n`
//! pages weighs `envelope_grams + n * sheet_grams`. A discount tier is chosen
//! per sorting region by the number of letters the batch holds for that
//! region; letters whose postcode has no region (not `region_digits` leading
//! digits, as abroad) earn no discount.

use serde::{Deserialize, Serialize};

use crate::money::Money;

/// The `[postage]` table. Missing keys take the values of [`Postage::default`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Postage {
    /// Weight of one printed A4 sheet.
    pub sheet_grams: u32,
    /// Weight of the envelope.
    pub envelope_grams: u32,
    /// Leading postcode digits that form a sorting region (Leitregion).
    pub region_digits: u8,
    /// Weight classes, ascending by `max_grams`.
    pub classes: Vec<WeightClass>,
    /// Bulk discount tiers, ascending by `min_letters`.
    pub discounts: Vec<DiscountTier>,
}

/// A weight class of the postal operator ("Standardbrief").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightClass {
    pub name: String,
    /// Heaviest letter of this class, envelope included.
    pub max_grams: u32,
    /// Full price of one letter of this class.
    pub price: Money,
}

/// A bulk discount earned by a sorting region with at least `min_letters`
/// letters in one batch ("Teilleistung").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountTier {
    pub name: String,
    pub min_letters: u32,
    /// Discount on the class price, 0 to 100.
    pub percent: u32,
}

impl Default for Postage {
    fn default() -> Self {
        let class = |name: &str, max_grams, cents| WeightClass {
            name: name.into(),
            max_grams,
            price: Money(cents),
        };
        let tier = |name: &str, min_letters, percent| DiscountTier {
            name: name.into(),
            min_letters,
            percent,
        };
        Self {
            sheet_grams: 5,
            envelope_grams: 5,
            region_digits: 2,
            classes: vec![
                class("Standardbrief", 20, 95),
                class("Kompaktbrief", 50, 110),
                class("Großbrief", 500, 180),
            ],
            discounts: vec![
                tier("Teilleistung 250", 250, 10),
                tier("Teilleistung 1000", 1000, 18),
            ],
        }
    }
}

impl Postage {
    /// Every problem of the table, each as `(key path, message)` with key
    /// paths like `postage.classes[1].max_grams`. Empty when the table is usable.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let mut err = |key: String, msg: String| errors.push((key, msg));
        if self.sheet_grams == 0 {
            err(
                "postage.sheet_grams".into(),
                "must be at least 1 (one A4 sheet of 80 g/m² weighs 5 g)".into(),
            );
        }
        if !(1..=5).contains(&self.region_digits) {
            err(
                "postage.region_digits".into(),
                format!(
                    "must be 1 to 5 (leading postcode digits of a sorting region), got {}",
                    self.region_digits
                ),
            );
        }
        if self.classes.is_empty() {
            err(
                "postage.classes".into(),
                "needs at least one weight class".into(),
            );
        }
        for (i, c) in self.classes.iter().enumerate() {
            let key = |field: &str| format!("postage.classes[{i}].{field}");
            if c.name.trim().is_empty() {
                err(key("name"), "must not be empty".into());
            }
            if c.max_grams == 0 {
                err(key("max_grams"), "must be at least 1".into());
            }
            if let Some(prev) = i.checked_sub(1).map(|p| &self.classes[p]) {
                if c.max_grams <= prev.max_grams {
                    err(
                        key("max_grams"),
                        format!(
                            "classes must be ascending by max_grams: {} is not above {} of {:?}",
                            c.max_grams, prev.max_grams, prev.name
                        ),
                    );
                }
            }
        }
        for (i, d) in self.discounts.iter().enumerate() {
            let key = |field: &str| format!("postage.discounts[{i}].{field}");
            if d.name.trim().is_empty() {
                err(key("name"), "must not be empty".into());
            }
            if d.percent > 100 {
                err(
                    key("percent"),
                    format!("must be 0 to 100, got {}", d.percent),
                );
            }
            if d.min_letters == 0 {
                err(key("min_letters"), "must be at least 1".into());
            }
            if let Some(prev) = i.checked_sub(1).map(|p| &self.discounts[p]) {
                if d.min_letters <= prev.min_letters {
                    err(
                        key("min_letters"),
                        format!(
                            "discounts must be ascending by min_letters: {} is not above {} of {:?}",
                            d.min_letters, prev.min_letters, prev.name
                        ),
                    );
                }
            }
        }
        errors
    }

    /// Weight of a letter of `pages` pages, envelope included.
    pub fn weight_grams(&self, pages: u32) -> u32 {
        self.envelope_grams
            .saturating_add(pages.saturating_mul(self.sheet_grams))
    }

    /// The lightest class that takes `grams`; `None` when the letter is
    /// heavier than every class.
    pub fn class_for(&self, grams: u32) -> Option<&WeightClass> {
        self.classes.iter().find(|c| grams <= c.max_grams)
    }

    /// The best tier that `letters_in_region` letters of one sorting region
    /// earn; `None` below the first tier.
    pub fn tier_for(&self, letters_in_region: u32) -> Option<&DiscountTier> {
        self.discounts
            .iter()
            .filter(|d| d.min_letters <= letters_in_region)
            .max_by_key(|d| d.min_letters)
    }

    /// The sorting region of a postcode: its first `region_digits` characters
    /// when the postcode is all digits and at least that long; `None`
    /// otherwise (foreign or malformed postcodes earn no discount).
    pub fn region_of<'a>(&self, postcode: &'a str) -> Option<&'a str> {
        let postcode = postcode.trim();
        let n = usize::from(self.region_digits);
        (n > 0 && postcode.len() >= n && postcode.bytes().all(|b| b.is_ascii_digit()))
            .then(|| &postcode[..n])
    }

    /// Price of one letter of `class` with the discount of `tier`, rounded to
    /// whole cents (half a cent up).
    pub fn price(class: &WeightClass, tier: Option<&DiscountTier>) -> Money {
        let percent = i64::from(tier.map_or(0, |t| t.percent.min(100)));
        let hundredths = class.price.cents().saturating_mul(100 - percent);
        Money((hundredths + 50).div_euclid(100))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
