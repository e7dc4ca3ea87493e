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
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Postage, String> {
        #[derive(Deserialize)]
        struct Doc {
            postage: Postage,
        }
        toml::from_str::<Doc>(toml_text)
            .map(|d| d.postage)
            .map_err(|e| e.to_string())
    }

    const EXAMPLE: &str = r#"
[postage]
sheet_grams = 5
envelope_grams = 5
region_digits = 2
classes = [ { name = "Standardbrief", max_grams = 20, price = 0.95 }, { name = "Kompaktbrief", max_grams = 50, price = 1.10 }, { name = "Großbrief", max_grams = 500, price = 1.80 } ]
discounts = [ { name = "Teilleistung 250", min_letters = 250, percent = 10 }, { name = "Teilleistung 1000", min_letters = 1000, percent = 18 } ]
"#;

    #[test]
    fn the_documented_table_parses_to_the_defaults() {
        let p = parse(EXAMPLE).unwrap();
        assert_eq!(p, Postage::default());
        assert_eq!(p.classes[1].price, Money(110));
        assert!(p.check().is_empty(), "{:?}", p.check());
    }

    #[test]
    fn missing_keys_take_defaults_and_unknown_keys_are_refused() {
        let p = parse("[postage]\nsheet_grams = 6\n").unwrap();
        assert_eq!(p.sheet_grams, 6);
        assert_eq!(p.classes, Postage::default().classes);
        let e = parse("[postage]\nsheet_gram = 6\n").unwrap_err();
        assert!(e.contains("sheet_gram"), "{e}");
        let e = parse(
            "[postage]\nclasses = [ { name = \"A\", max_grams = 20, price = 0.95, colour = 1 } ]\n",
        )
        .unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn check_names_every_problem_by_key_path() {
        let p = parse(
            r#"
[postage]
sheet_grams = 0
region_digits = 6
classes = [ { name = "A", max_grams = 50, price = 1 }, { name = " ", max_grams = 20, price = 1 } ]
discounts = [ { name = "x", min_letters = 100, percent = 101 }, { name = "y", min_letters = 100, percent = 5 } ]
"#,
        )
        .unwrap();
        let keys: Vec<String> = p.check().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "postage.sheet_grams",
                "postage.region_digits",
                "postage.classes[1].name",
                "postage.classes[1].max_grams",
                "postage.discounts[0].percent",
                "postage.discounts[1].min_letters",
            ]
        );
        let empty = Postage {
            classes: Vec::new(),
            region_digits: 0,
            ..Postage::default()
        };
        let keys: Vec<String> = empty.check().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["postage.region_digits", "postage.classes"]);
    }

    #[test]
    fn weight_and_class_follow_the_pages() {
        let p = Postage::default();
        assert_eq!(p.weight_grams(1), 10);
        assert_eq!(p.weight_grams(3), 20);
        assert_eq!(
            p.class_for(p.weight_grams(3)).unwrap().name,
            "Standardbrief"
        );
        assert_eq!(p.class_for(p.weight_grams(4)).unwrap().name, "Kompaktbrief");
        assert_eq!(p.class_for(50).unwrap().name, "Kompaktbrief");
        assert_eq!(p.class_for(51).unwrap().name, "Großbrief");
        assert!(p.class_for(501).is_none());
    }

    #[test]
    fn tier_is_the_best_one_reached() {
        let p = Postage::default();
        assert!(p.tier_for(0).is_none());
        assert!(p.tier_for(249).is_none());
        assert_eq!(p.tier_for(250).unwrap().percent, 10);
        assert_eq!(p.tier_for(999).unwrap().percent, 10);
        assert_eq!(p.tier_for(1000).unwrap().percent, 18);
        assert_eq!(p.tier_for(u32::MAX).unwrap().percent, 18);
    }

    #[test]
    fn price_is_rounded_to_cents() {
        let p = Postage::default();
        let standard = &p.classes[0];
        assert_eq!(Postage::price(standard, None), Money(95));
        // 95 * 0.90 = 85.5 -> 86; 95 * 0.82 = 77.9 -> 78
        assert_eq!(Postage::price(standard, p.tier_for(300)), Money(86));
        assert_eq!(Postage::price(standard, p.tier_for(5000)), Money(78));
        // 110 * 0.82 = 90.2 -> 90
        assert_eq!(Postage::price(&p.classes[1], p.tier_for(1000)), Money(90));
        let all = DiscountTier {
            name: "all".into(),
            min_letters: 1,
            percent: 100,
        };
        assert_eq!(Postage::price(standard, Some(&all)), Money(0));
    }

    #[test]
    fn region_is_the_postcode_prefix() {
        let p = Postage::default();
        assert_eq!(p.region_of("38440"), Some("38"));
        assert_eq!(p.region_of(" 01067 "), Some("01"));
        assert_eq!(p.region_of("A-1010"), None);
        assert_eq!(p.region_of("1"), None);
        let three = Postage {
            region_digits: 3,
            ..Postage::default()
        };
        assert_eq!(three.region_of("38440"), Some("384"));
    }
}
