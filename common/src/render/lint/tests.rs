#![allow(clippy::unwrap_used)]

use crate::policy::shipped;

use super::*;

#[test]
fn the_shipped_templates_pass_the_trial_renders() {
    let set = shipped();
    assert_eq!(check(&set.templates, &set.brand), Vec::new());
}

/// The old material's pattern: "für Ihren {{ o.vehicle.model }}" prints
/// nothing after "Ihren" for a customer without a vehicle.
#[test]
fn a_template_that_prints_a_missing_model_fails_and_says_for_whom_and_where() {
    let set = shipped();
    let mut t = set.templates["hu_reminder"].clone();
    t.subject = "Hauptuntersuchung für Ihren {{ occasions[0].vehicle.model }} steht an".into();
    let errors = check(&BTreeMap::from([("hu_reminder".into(), t)]), &set.brand);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.file, "templates/hu_reminder.toml");
    assert_eq!(e.key, "subject");
    assert!(
        e.message.contains("a customer without a vehicle")
            && e.message
                .contains("\"Hauptuntersuchung für Ihren ‹empty› steht an\""),
        "{}",
        e.message
    );
}

#[test]
fn a_guarded_value_passes_and_a_failing_render_is_reported() {
    let set = shipped();
    let mut t = set.templates["hu_reminder"].clone();
    t.subject = "HU{% if occasions[0].vehicle.model %} für Ihren {{ occasions[0].vehicle.model }}{% endif %}".into();
    let one = BTreeMap::from([("hu_reminder".to_string(), t.clone())]);
    assert_eq!(check(&one, &set.brand), Vec::new());

    // A company has no first name: "Hallo ," for every company.
    t.subject = "Hallo {{ customer.first_name }},".into();
    let errors = check(&BTreeMap::from([("hu_reminder".into(), t)]), &set.brand);
    let who: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert!(
        who.iter()
            .any(|m| m.contains("a company: \"Hallo ‹empty›,\""))
            && !who
                .iter()
                .any(|m| m.contains("a customer with a very long name")),
        "{who:?}"
    );
}
