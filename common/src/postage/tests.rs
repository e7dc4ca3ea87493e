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
