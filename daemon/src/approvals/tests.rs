//! The approval workflow on a real central store in a temp directory, seeded
//! from the shipped `policies/` directory.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use touchpoint_common::config::StoresConfig;
use touchpoint_common::policy::PolicySet;

use super::*;

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn shipped_files() -> BTreeMap<String, String> {
    crate::policy::read_dir(&policies_dir(), "policies").unwrap()
}

struct Rig {
    _dir: tempfile::TempDir,
    material: Material,
    files: BTreeMap<String, String>,
    set: PolicySet,
}

impl Rig {
    /// A fresh store seeded from the shipped policies.
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let stores = Arc::new(Stores::open(dir.path(), &StoresConfig::default()).unwrap());
        let files = shipped_files();
        let set = PolicySet::validate(&files, "policies").unwrap();
        let material = Material::new(stores);
        material.seed(&files).unwrap();
        Rig {
            _dir: dir,
            material,
            files,
            set,
        }
    }

    fn brand(&self) -> &BrandPolicy {
        &self.set.brand
    }

    fn file(&self, name: &str) -> String {
        self.files[&format!("templates/{name}.toml")].clone()
    }

    /// service_due with another subject line, proposed by ann (uid 1001).
    fn propose_subject(&self, subject: &str) -> Proposal {
        let text = self
            .file("service_due")
            .replacen("Zeit für die Inspektion", subject, 1);
        self.material
            .propose(
                "service_due",
                &text,
                "shorter subject",
                "ann",
                1001,
                self.brand(),
            )
            .unwrap()
    }

    fn in_force_subject(&self) -> String {
        self.material.in_force().unwrap()["service_due"]
            .subject
            .clone()
    }
}

#[test]
fn seeding_makes_every_shipped_template_version_1_once() {
    let rig = Rig::new();
    let names: Vec<String> = rig.set.templates.keys().cloned().collect();
    assert!(names.len() >= 6, "{names:?}");

    let in_force = rig.material.in_force().unwrap();
    // What the renderer gets from the store is what the files say, version
    // fingerprints included (messages recorded them before the store knew).
    assert_eq!(in_force, rig.set.templates);

    let history = rig.material.history(None).unwrap();
    assert_eq!(
        history.iter().map(|h| h.name.clone()).collect::<Vec<_>>(),
        names
    );
    for h in &history {
        assert_eq!(h.in_force, 1);
        assert_eq!(h.versions.len(), 1);
        let v = &h.versions[0];
        assert_eq!(v.author, format!("policies/templates/{}.toml", h.name));
        assert_eq!(v.approved_by, "seed");
        assert_eq!(v.proposal, None);
        assert_eq!(v.text, rig.file(&h.name));
    }

    // Seeding again changes nothing; an edited file is reported, not used.
    assert_eq!(rig.material.seed(&rig.files).unwrap(), Seeded::default());
    let mut edited = rig.files.clone();
    let text = rig.file("birthday").replace("Geburtstag", "Wiegenfest");
    assert_ne!(text, rig.file("birthday"));
    edited.insert("templates/birthday.toml".into(), text);
    assert_eq!(
        rig.material.seed(&edited).unwrap(),
        Seeded {
            added: vec![],
            differs: vec!["birthday".into()]
        }
    );
    assert_eq!(rig.material.in_force().unwrap(), rig.set.templates);
}

#[test]
fn shipped_templates_pass_the_proposal_rules() {
    let rig = Rig::new();
    assert_eq!(
        rig.brand().brand.imprint,
        "Amtsgericht Braunschweig HRB 210001"
    );
    for name in rig.set.templates.keys() {
        let t = check_proposal(name, &rig.file(name), rig.brand())
            .unwrap_or_else(|e| panic!("{name}: {}", lines(&e)));
        assert_eq!(&t, &rig.set.templates[name]);
    }
}

#[test]
fn a_valid_proposal_is_pending_with_its_diff() {
    let rig = Rig::new();
    let p = rig.propose_subject("Inspektion fällig");
    assert_eq!(p.id, 1);
    assert_eq!(p.status, ProposalStatus::Pending);
    assert_eq!(p.base_version, 1);
    assert_eq!(p.rollback_to, None);
    assert_eq!((p.author.as_str(), p.author_uid), ("ann", 1001));
    assert_eq!(rig.material.proposals(false).unwrap(), vec![p.clone()]);

    let d = rig.material.detail(p.id).unwrap();
    assert_eq!(d.current_version, 1);
    assert_eq!(d.proposal, p);
    let diff: Vec<&str> = d.diff.lines().collect();
    assert_eq!(diff[0], "--- service_due v1 (in force)");
    assert_eq!(diff[1], "+++ service_due proposal #1");
    assert!(diff[2].starts_with("@@ -32,7 +32,7 @@"), "{}", d.diff);
    let changed: Vec<&str> = diff
        .iter()
        .copied()
        .filter(|l| l.starts_with(['-', '+']))
        .skip(2)
        .collect();
    assert_eq!(
        changed,
        [
            "-subject = '''{% if occasions[0].vehicle.model %}Ihr {{ occasions[0].vehicle.model }}: Zeit für die Inspektion{% else %}Zeit für die Inspektion Ihres Fahrzeugs{% endif %}'''",
            "+subject = '''{% if occasions[0].vehicle.model %}Ihr {{ occasions[0].vehicle.model }}: Inspektion fällig{% else %}Zeit für die Inspektion Ihres Fahrzeugs{% endif %}'''",
        ]
    );
    // Three lines of context on each side.
    assert_eq!(diff.len(), 3 + 3 + 2 + 3, "{}", d.diff);

    // Nothing is in force until approved.
    assert!(rig
        .in_force_subject()
        .contains(": Zeit für die Inspektion{% else"));
    // Ids count up.
    assert_eq!(rig.propose_subject("Bitte zur Inspektion").id, 2);
}

#[test]
fn the_author_cannot_approve_their_own_proposal() {
    let rig = Rig::new();
    let p = rig.propose_subject("Inspektion fällig");
    // Same uid under another name, and the same name under another uid.
    for (name, uid) in [("root", 1001), ("ann", 0)] {
        let e = rig.material.approve(p.id, name, uid, "ok").unwrap_err();
        assert!(matches!(e, ApprovalError::OwnProposal { .. }), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::Forbidden);
    }
    let e = rig.material.approve(p.id, "ann", 1001, "ok").unwrap_err();
    assert_eq!(
        e.to_string(),
        "four eyes: ann cannot approve proposal #1, which ann proposed; another reviewer must"
    );
    assert_eq!(rig.material.proposals(false).unwrap(), vec![p]);
    assert_eq!(
        rig.material.history(Some("service_due")).unwrap()[0].in_force,
        1
    );
}

#[test]
fn another_reviewer_approves_and_it_is_in_force_at_once() {
    let rig = Rig::new();
    let v1 = rig.material.history(Some("service_due")).unwrap()[0].versions[0].clone();
    let p = rig.propose_subject("Inspektion fällig");
    let v2 = rig.material.approve(p.id, "bob", 1002, "passt").unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.text, p.text);
    assert_eq!(
        (v2.author.as_str(), v2.approved_by.as_str()),
        ("ann", "bob")
    );
    assert_eq!(v2.comment, "shorter subject");
    assert_eq!(v2.proposal, Some(1));

    let in_force = rig.material.in_force().unwrap();
    let t = &in_force["service_due"];
    assert_eq!(
        t.subject,
        "{% if occasions[0].vehicle.model %}Ihr {{ occasions[0].vehicle.model }}: Inspektion fällig{% else %}Zeit für die Inspektion Ihres Fahrzeugs{% endif %}"
    );
    assert_eq!(t.version, v2.fingerprint);
    assert_ne!(v2.fingerprint, v1.fingerprint);
    // The other templates are untouched.
    assert_eq!(in_force["birthday"], rig.set.templates["birthday"]);

    // The proposal is decided, and only once.
    assert!(rig.material.proposals(false).unwrap().is_empty());
    let decided = rig.material.proposals(true).unwrap();
    assert!(
        matches!(&decided[0].status, ProposalStatus::Approved { by, comment, version: 2, .. }
            if by == "bob" && comment == "passt"),
        "{decided:?}"
    );
    let e = rig.material.approve(p.id, "carl", 1003, "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "proposal #1 is not pending: it was approved by bob as service_due v2"
    );
    let e = rig
        .material
        .reject(p.id, "carl", 1003, "too late")
        .unwrap_err();
    assert!(matches!(e, ApprovalError::NotPending { .. }), "{e:?}");

    // A message sent with v1 can still be rendered as it was.
    assert_eq!(
        rig.material
            .version_text("service_due", v1.fingerprint)
            .unwrap(),
        Some(v1.text.clone())
    );
    assert_eq!(rig.material.version_text("service_due", 42).unwrap(), None);
    assert_eq!(
        rig.material.version_text("nope", v1.fingerprint).unwrap(),
        None
    );
}

#[test]
fn a_rejection_needs_a_comment() {
    let rig = Rig::new();
    let p = rig.propose_subject("Inspektion fällig");
    for comment in ["", "  \n"] {
        let e = rig.material.reject(p.id, "bob", 1002, comment).unwrap_err();
        assert_eq!(e.to_string(), "a rejection needs a comment saying why");
    }
    let r = rig
        .material
        .reject(p.id, "bob", 1002, "Tonfall passt nicht")
        .unwrap();
    assert!(
        matches!(&r.status, ProposalStatus::Rejected { by, comment, .. }
            if by == "bob" && comment == "Tonfall passt nicht"),
        "{r:?}"
    );
    assert_eq!(rig.material.proposals(true).unwrap(), vec![r]);
    let e = rig.material.approve(p.id, "carl", 1003, "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "proposal #1 is not pending: it was rejected by bob"
    );
    assert!(rig
        .in_force_subject()
        .contains(": Zeit für die Inspektion{% else"));
    assert!(matches!(
        rig.material.reject(9, "bob", 1002, "x").unwrap_err(),
        ApprovalError::UnknownProposal(9)
    ));
}

#[test]
fn a_proposal_overtaken_by_another_approval_is_stale() {
    let rig = Rig::new();
    let first = rig.propose_subject("Inspektion fällig");
    let second = rig.propose_subject("Bitte zur Inspektion");
    rig.material.approve(first.id, "bob", 1002, "").unwrap();

    let e = rig
        .material
        .approve(second.id, "bob", 1002, "")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "proposal #2 is stale: it was made against service_due v1, and v2 has been approved since; propose the change again against v2"
    );
    assert_eq!(e.kind(), ErrorKind::Invalid);
    // Its diff is against what is in force now, and it is still pending
    // (to be rejected, or proposed again).
    let d = rig.material.detail(second.id).unwrap();
    assert_eq!(d.current_version, 2);
    assert!(
        d.diff.starts_with("--- service_due v2 (in force)\n"),
        "{}",
        d.diff
    );
    assert!(
        d.diff.contains(
            "\n-subject = '''{% if occasions[0].vehicle.model %}Ihr {{ occasions[0].vehicle.model }}: Inspektion fällig{% else %}Zeit für die Inspektion Ihres Fahrzeugs{% endif %}'''\n"
        ),
        "{}",
        d.diff
    );
    assert_eq!(rig.material.proposals(false).unwrap(), vec![second]);
    assert!(rig
        .in_force_subject()
        .contains(": Inspektion fällig{% else"));
}

#[test]
fn a_rollback_is_a_proposal_and_restores_the_old_text_as_a_new_version() {
    let rig = Rig::new();
    let p = rig.propose_subject("Inspektion fällig");
    rig.material.approve(p.id, "bob", 1002, "").unwrap();

    let r = rig
        .material
        .propose_rollback(
            "service_due",
            1,
            "back to the old subject",
            "bob",
            1002,
            rig.brand(),
        )
        .unwrap();
    assert_eq!((r.id, r.base_version, r.rollback_to), (2, 2, Some(1)));
    assert_eq!(r.text, rig.file("service_due"));
    let d = rig.material.detail(r.id).unwrap();
    let changed: Vec<&str> = d
        .diff
        .lines()
        .filter(|l| l.starts_with(['-', '+']))
        .collect();
    assert_eq!(
        changed,
        [
            "--- service_due v2 (in force)",
            "+++ service_due proposal #2",
            "-subject = '''{% if occasions[0].vehicle.model %}Ihr {{ occasions[0].vehicle.model }}: Inspektion fällig{% else %}Zeit für die Inspektion Ihres Fahrzeugs{% endif %}'''",
            "+subject = '''{% if occasions[0].vehicle.model %}Ihr {{ occasions[0].vehicle.model }}: Zeit für die Inspektion{% else %}Zeit für die Inspektion Ihres Fahrzeugs{% endif %}'''",
        ]
    );
    // Four eyes for rollbacks too.
    assert!(matches!(
        rig.material.approve(r.id, "bob", 1002, "").unwrap_err(),
        ApprovalError::OwnProposal { .. }
    ));
    let v3 = rig.material.approve(r.id, "ann", 1001, "ok").unwrap();
    let h = rig.material.history(Some("service_due")).unwrap().remove(0);
    assert_eq!(h.in_force, 3);
    assert_eq!(
        h.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(v3, h.versions[2]);
    assert_eq!(v3.text, h.versions[0].text);
    assert_eq!(v3.fingerprint, h.versions[0].fingerprint);
    assert_eq!(rig.material.in_force().unwrap(), rig.set.templates);

    // Rolling back to what is in force, or to a version that never was.
    let e = rig
        .material
        .propose_rollback("service_due", 1, "", "bob", 1002, rig.brand())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "nothing to propose: the text is service_due v3, the version in force"
    );
    let e = rig
        .material
        .propose_rollback("service_due", 7, "", "bob", 1002, rig.brand())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "template \"service_due\" has no version 7 (it has v1 to v3)"
    );
    assert!(matches!(
        rig.material
            .propose_rollback("nope", 1, "", "bob", 1002, rig.brand())
            .unwrap_err(),
        ApprovalError::UnknownTemplate(_)
    ));
}

#[test]
fn a_rollback_is_checked_against_todays_rules() {
    let rig = Rig::new();
    let mut brand = rig.brand().clone();
    let p = rig.propose_subject("Inspektion fällig");
    rig.material.approve(p.id, "bob", 1002, "").unwrap();
    // The brand has since changed its register number: v1 lacks the new one.
    brand.brand.imprint = "Amtsgericht Braunschweig HRB 299999".into();
    let e = rig
        .material
        .propose_rollback("service_due", 1, "", "ann", 1001, &brand)
        .unwrap_err();
    let ApprovalError::Invalid(errors) = &e else {
        panic!("{e:?}");
    };
    let parts: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(parts, ["text", "html", "letter"], "{e}");
    assert_eq!(rig.material.proposals(true).unwrap().len(), 1);
}

#[test]
fn a_new_template_is_proposed_against_nothing() {
    let rig = Rig::new();
    let p = rig
        .material
        .propose("memo", GOOD, "a new mailing", "ann", 1001, rig.brand())
        .unwrap();
    assert_eq!(p.base_version, 0);
    let d = rig.material.detail(p.id).unwrap();
    assert_eq!(d.current_version, 0);
    assert!(
        d.diff
            .starts_with("--- memo (new template)\n+++ memo proposal #1\n@@ -0,0 +1,19 @@\n"),
        "{}",
        d.diff
    );
    assert_eq!(rig.material.proposed_template(p.id).unwrap().name, "memo");
    let v = rig.material.approve(p.id, "bob", 1002, "").unwrap();
    assert_eq!(v.version, 1);
    assert_eq!(
        rig.material.in_force().unwrap()["memo"].subject,
        "Hallo{% if customer.last_name %} {{ customer.last_name }}{% endif %}"
    );
    for bad in ["", "Memo", "../memo", "memo.toml"] {
        let e = rig
            .material
            .propose(bad, GOOD, "", "ann", 1001, rig.brand())
            .unwrap_err();
        assert!(matches!(e, ApprovalError::BadName(_)), "{bad}: {e:?}");
    }
}

#[test]
fn decisions_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let files = shipped_files();
    let set = PolicySet::validate(&files, "policies").unwrap();
    let open = || {
        Material::new(Arc::new(
            Stores::open(dir.path(), &StoresConfig::default()).unwrap(),
        ))
    };
    {
        let m = open();
        m.seed(&files).unwrap();
        let p = m
            .propose("memo", GOOD, "", "ann", 1001, &set.brand)
            .unwrap();
        m.approve(p.id, "bob", 1002, "").unwrap();
        m.propose(
            "memo",
            &GOOD.replace("Hallo", "Moin"),
            "",
            "ann",
            1001,
            &set.brand,
        )
        .unwrap();
    }
    let m = open();
    assert!(m.seed(&files).unwrap().added.is_empty());
    assert_eq!(
        m.in_force().unwrap()["memo"].subject,
        "Hallo{% if customer.last_name %} {{ customer.last_name }}{% endif %}"
    );
    assert_eq!(m.proposals(false).unwrap()[0].id, 2);
    // The counter goes on where it was.
    let p = m
        .propose(
            "memo",
            &GOOD.replace("Hallo", "Servus"),
            "",
            "ann",
            1001,
            &set.brand,
        )
        .unwrap();
    assert_eq!(p.id, 3);
}

// ----- invalid proposals ------------------------------------------------------------

/// A small valid template, so that the lines in the errors below are plain.
const GOOD: &str = "# Test material
subject = 'Hallo{% if customer.last_name %} {{ customer.last_name }}{% endif %}'
text = '''
{{ customer.salutation_line }}
{{ slots.signature }}
Abmelden: {{ unsubscribe_url }}
Amtsgericht Braunschweig HRB 210001
'''
html = '''
<p>{{ slots.signature }}</p>
<a href=\"{{ unsubscribe_url }}\">Abmelden</a>
<p>Amtsgericht Braunschweig
HRB 210001</p>
'''
letter = '''
{{ customer.salutation_line }}
{{ slots.opening_hours }}
Amtsgericht Braunschweig HRB 210001
'''
";

/// The errors proposing `text` as `memo` gives; nothing is stored.
fn refused(rig: &Rig, text: &str) -> Vec<String> {
    let e = rig
        .material
        .propose("memo", text, "", "ann", 1001, rig.brand())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(rig.material.proposals(true).unwrap().is_empty());
    let ApprovalError::Invalid(errors) = e else {
        panic!("{e:?}");
    };
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn the_good_test_template_is_good() {
    let rig = Rig::new();
    check_proposal("memo", GOOD, rig.brand()).unwrap();
    // The imprint may wrap (it does in GOOD's html), or use whitespace markers.
    let text = GOOD.replace("{{ unsubscribe_url }}\">", "{{- unsubscribe_url -}}\">");
    check_proposal("memo", &text, rig.brand()).unwrap();
}

#[test]
fn a_syntax_error_is_refused_at_its_line() {
    let rig = Rig::new();
    assert_eq!(
        refused(&rig, &GOOD.replace("{{ slots.signature }}\nAbmelden", "{{ slots.signature }\nAbmelden")),
        ["templates/memo.toml (proposal):5: text: syntax error: unexpected `}`, expected end of variable block"]
    );
}

#[test]
fn an_unknown_variable_is_refused() {
    let rig = Rig::new();
    assert_eq!(
        refused(&rig, &GOOD.replace("<p>{{ slots.signature }}</p>", "<p>{{ dealer.fax }}</p>")),
        ["templates/memo.toml (proposal):10: html: unknown variable `dealer.fax` (a template has: brand.name, customer.salutation_line, customer.first_name, customer.last_name, dealer.name, dealer.street, dealer.postcode, dealer.city, dealer.phone, dealer.email, occasions, unsubscribe_url, today, slots.*)"]
    );
}

#[test]
fn an_undeclared_slot_is_refused() {
    let rig = Rig::new();
    assert_eq!(
        refused(&rig, &GOOD.replace("{{ slots.opening_hours }}", "{{ slots.opening_hour }}")),
        ["templates/memo.toml (proposal):17: letter: slot `opening_hour` is not declared by the brand (brand.toml [slots.opening_hour]; declared: local_offer, logo, opening_hours, signature)"]
    );
    assert_eq!(
        refused(&rig, &GOOD.replace("{{ slots.opening_hours }}", "{{ slots['logo'] }}")),
        ["templates/memo.toml (proposal):17: letter: `slots` must be used as slots.<name>, so that each slot can be checked against the brand's [slots]"]
    );
}

#[test]
fn a_letter_without_the_imprint_is_refused() {
    let rig = Rig::new();
    let text = GOOD.replace(
        "{{ slots.opening_hours }}\nAmtsgericht Braunschweig HRB 210001",
        "{{ slots.opening_hours }}\nAmtsgericht Braunschweig",
    );
    assert_eq!(
        refused(&rig, &text),
        ["templates/memo.toml (proposal):15: letter: the imprint \"Amtsgericht Braunschweig HRB 210001\" is missing; every email and letter must carry it (brand.toml [brand] imprint)"]
    );
    // A brand without an imprint of its own: the court is looked for.
    let mut brand = rig.brand().clone();
    brand.brand.imprint = String::new();
    check_proposal("memo", &text, &brand).unwrap();
    let errors =
        check_proposal("memo", &text.replace("Amtsgericht", "Gericht"), &brand).unwrap_err();
    assert_eq!(
        lines(&errors),
        "templates/memo.toml (proposal):3: text: the imprint \"Amtsgericht\" is missing; every email and letter must carry it (brand.toml [brand] imprint)\n\
         templates/memo.toml (proposal):9: html: the imprint \"Amtsgericht\" is missing; every email and letter must carry it (brand.toml [brand] imprint)\n\
         templates/memo.toml (proposal):15: letter: the imprint \"Amtsgericht\" is missing; every email and letter must carry it (brand.toml [brand] imprint)"
    );
}

#[test]
fn an_html_part_without_the_unsubscribe_link_is_refused() {
    let rig = Rig::new();
    assert_eq!(
        refused(&rig, &GOOD.replace("<a href=\"{{ unsubscribe_url }}\">Abmelden</a>", "<a href=\"https://example.org\">Abmelden</a>")),
        ["templates/memo.toml (proposal):9: html: has no unsubscribe link; every email part must contain {{ unsubscribe_url }}"]
    );
    // Using it is not printing it.
    assert_eq!(
        refused(&rig, &GOOD.replace("Abmelden: {{ unsubscribe_url }}", "{% if unsubscribe_url %}Abmelden{% endif %}")),
        ["templates/memo.toml (proposal):3: text: has no unsubscribe link; every email part must contain {{ unsubscribe_url }}"]
    );
}

#[test]
fn every_error_of_a_proposal_is_reported_in_line_order() {
    let rig = Rig::new();
    let text = GOOD
        .replace("Abmelden: {{ unsubscribe_url }}", "{{ slots.fax }}")
        .replace("{{ slots.opening_hours }}", "{% if x %}");
    assert_eq!(
        refused(&rig, &text),
        [
            "templates/memo.toml (proposal):3: text: has no unsubscribe link; every email part must contain {{ unsubscribe_url }}",
            "templates/memo.toml (proposal):6: text: slot `fax` is not declared by the brand (brand.toml [slots.fax]; declared: local_offer, logo, opening_hours, signature)",
            "templates/memo.toml (proposal):17: letter: syntax error: unexpected end of input, expected end of block",
        ]
    );
    // Not a template file at all.
    assert_eq!(
        refused(&rig, "subject = 'x'\n"),
        ["templates/memo.toml (proposal):1: missing key `text`"]
    );
    assert_eq!(
        refused(&rig, &"x".repeat(MAX_TEMPLATE_BYTES + 1)),
        ["templates/memo.toml (proposal): is 262145 bytes long; a template file has at most 262144"]
    );
}

// ----- dealers' slots against the brand's declarations ----------------------------

fn validate_with_dealer(brand_text: &str, slots: &str) -> Result<PolicySet, Vec<String>> {
    let mut files = BTreeMap::new();
    files.insert("brand.toml".to_string(), brand_text.to_string());
    for (k, v) in shipped_files() {
        if k.starts_with("templates/") {
            files.insert(k, v);
        }
    }
    files.insert(
        "dealers/d900.toml".into(),
        format!("[tenant]\nid = \"d900\"\nname = \"Autohaus Test\"\n\n[slots]\n{slots}"),
    );
    PolicySet::validate(&files, "p").map_err(|e| e.iter().map(ToString::to_string).collect())
}

#[test]
fn dealer_slots_are_checked_against_the_brand() {
    let brand = std::fs::read_to_string(policies_dir().join("brand.toml")).unwrap();
    validate_with_dealer(&brand, "signature = \"Ihr Team\"\nlogo = \"\"\n").unwrap();
    let errors = validate_with_dealer(
        &brand,
        &format!(
            "signature = \"<b>Ihr Team</b>\"\nfax = \"0531 1\"\nopening_hours = \"{}\"\n",
            "ä".repeat(121)
        ),
    )
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "p/dealers/d900.toml:7: slots.fax: the brand declares no slot \"fax\" (brand.toml [slots] has: local_offer, logo, opening_hours, signature)",
            "p/dealers/d900.toml:8: slots.opening_hours: is 121 characters long, the brand allows 120",
            "p/dealers/d900.toml:6: slots.signature: must not contain markup (< or >): the brand allows plain text only",
        ]
    );
    let required = brand.replace(
        "[slots.signature]\nmax_len = 200\n",
        "[slots.signature]\nmax_len = 200\nrequired = true\n",
    );
    assert_ne!(required, brand);
    assert_eq!(
        validate_with_dealer(&required, "signature = \" \"\n").unwrap_err(),
        ["p/dealers/d900.toml:6: slots.signature: is required by the brand and missing or empty"]
    );
    // A brand that declares no slots leaves them free, as before.
    let from = brand.find("[slots.signature]").unwrap();
    let to = brand.find("# How email goes out.").unwrap();
    let undeclared = format!("{}{}", &brand[..from], &brand[to..]);
    assert!(!undeclared.contains("\n[slots."), "{undeclared}");
    validate_with_dealer(&undeclared, "fax = \"<b>x</b>\"\n").unwrap();
    // And a declaration must make sense.
    let bad = brand.replace("[slots.logo]\nmax_len = 200", "[slots.logo]\nmax_len = 0");
    let errors = validate_with_dealer(&bad, "").unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].ends_with(": slots.logo.max_len: must be between 1 and 2000, got 0"),
        "{errors:?}"
    );
}

// ----- dealers' slots as brand material ------------------------------------------

fn d001() -> TenantId {
    TenantId::new("d001").unwrap()
}

impl Rig {
    /// A rig whose dealers are registered and whose slots are seeded (the
    /// shipped brand reviews dealers' slots).
    fn with_slots() -> Rig {
        let rig = Rig::new();
        assert!(rig.brand().review.dealer_slots);
        for (id, t) in &rig.set.tenants {
            rig.material
                .stores
                .central()
                .register_tenant(id, &t.tenant.name)
                .unwrap();
        }
        let seeded = rig.material.seed_slots(&rig.set).unwrap();
        assert_eq!(seeded.added.len(), rig.set.tenants.len());
        rig
    }

    /// The shipped set with d001's signature changed in its file.
    fn set_with_signature(&self, signature: &str) -> PolicySet {
        let mut set = self.set.clone();
        set.tenants
            .get_mut(&d001())
            .unwrap()
            .slots
            .insert("signature".into(), signature.into());
        set
    }

    fn signature_in_force(&self) -> String {
        self.material.slots_in_force(&d001()).unwrap().unwrap()["signature"].clone()
    }
}

const FILE_SIGNATURE: &str = "Ihr Serviceteam\nDaniel Winter, Serviceleitung";

#[test]
fn seeding_makes_each_dealers_file_slots_version_1_apart_from_the_templates() {
    let rig = Rig::with_slots();
    let h = rig.material.history(Some("slots/d001")).unwrap().remove(0);
    assert_eq!((h.in_force, h.versions.len()), (1, 1));
    let v = &h.versions[0];
    assert_eq!(
        (v.author.as_str(), v.approved_by.as_str()),
        ("policies/dealers/d001.toml", "seed")
    );
    assert_eq!(
        v.text,
        "[slots]\n\
         local_offer = \"Während der Inspektion fahren Sie kostenlos einen Ersatzwagen – bitte bei der Terminvereinbarung reservieren.\"\n\
         logo = \"\"\n\
         opening_hours = \"Mo–Fr 7:30–18:00 Uhr, Sa 9:00–13:00 Uhr\"\n\
         signature = \"Ihr Serviceteam\\nDaniel Winter, Serviceleitung\"\n"
    );
    assert_eq!(
        rig.material.slots_in_force(&d001()).unwrap().as_ref(),
        Some(&rig.set.tenants[&d001()].slots)
    );
    // Slots are not templates: the renderer's templates are unchanged.
    assert_eq!(rig.material.in_force().unwrap(), rig.set.templates);
    // Seeding again changes nothing.
    assert_eq!(
        rig.material.seed_slots(&rig.set).unwrap(),
        SeededSlots::default()
    );
}

#[test]
fn a_slots_proposal_is_stored_canonical_and_approved_by_another_reviewer() {
    let rig = Rig::with_slots();
    // As a dealer's editor might write it: out of order, with a comment.
    let text = "# new signature\n[slots]\nsignature = \"Ihr Team vom Autohaus Müller\"\nlogo = ''\n\
                opening_hours = \"Mo–Fr 7:30–18:00 Uhr, Sa 9:00–13:00 Uhr\"\n\
                local_offer = \"Während der Inspektion fahren Sie kostenlos einen Ersatzwagen – bitte bei der Terminvereinbarung reservieren.\"\n";
    let p = rig
        .material
        .propose(
            "slots/d001",
            text,
            "neue Signatur",
            "ann",
            1001,
            rig.brand(),
        )
        .unwrap();
    assert_eq!((p.id, p.base_version), (1, 1));
    assert!(p.text.starts_with("[slots]\nlocal_offer = "), "{}", p.text);
    let d = rig.material.detail(p.id).unwrap();
    let changed: Vec<&str> = d
        .diff
        .lines()
        .filter(|l| l.starts_with(['-', '+']))
        .collect();
    assert_eq!(
        changed,
        [
            "--- slots/d001 v1 (in force)",
            "+++ slots/d001 proposal #1",
            "-signature = \"Ihr Serviceteam\\nDaniel Winter, Serviceleitung\"",
            "+signature = \"Ihr Team vom Autohaus Müller\"",
        ]
    );
    // Nothing changes until approved; the author cannot approve.
    assert_eq!(rig.signature_in_force(), FILE_SIGNATURE);
    assert!(matches!(
        rig.material.approve(p.id, "ann", 1001, "").unwrap_err(),
        ApprovalError::OwnProposal { .. }
    ));
    let v2 = rig.material.approve(p.id, "bob", 1002, "passt").unwrap();
    assert_eq!((v2.version, v2.text.as_str()), (2, p.text.as_str()));
    assert_eq!(rig.signature_in_force(), "Ihr Team vom Autohaus Müller");
    // The same values again, written differently, are no change.
    let e = rig
        .material
        .propose("slots/d001", text, "", "carl", 1003, rig.brand())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "nothing to propose: the text is slots/d001 v2, the version in force"
    );
    // A rollback is a proposal like any other.
    let r = rig
        .material
        .propose_rollback("slots/d001", 1, "zurück", "carl", 1003, rig.brand())
        .unwrap();
    rig.material.approve(r.id, "bob", 1002, "").unwrap();
    assert_eq!(rig.signature_in_force(), FILE_SIGNATURE);
    assert_eq!(
        rig.material.history(Some("slots/d001")).unwrap()[0].in_force,
        3
    );
    // The preview renders a template in force with the proposed values.
    assert_eq!(
        rig.material.proposed_template(p.id).unwrap().name,
        "service_due"
    );
}

/// A change of a dealer's slots (proposed, decided) is announced as that
/// dealer's, so that a subscriber scoped to other dealers does not hear of
/// it; a change of brand material is announced to everyone.
#[test]
fn a_change_of_a_dealers_slots_is_announced_as_that_dealers() {
    use crate::events::Audience;
    use touchpoint_common::protocol::Topic;
    let rig = Rig::with_slots();
    let mut rx = rig.material.stores.events().subscribe();
    let mut heard = || {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if e.topics.contains(Topic::Approvals) {
                out.push(e.audience);
            }
        }
        out
    };
    let text = "[slots]\nsignature = \"Ihr Team vom Autohaus Müller\"\nlogo = ''\n\
                opening_hours = \"Mo–Fr 7:30–18:00 Uhr, Sa 9:00–13:00 Uhr\"\n\
                local_offer = \"Während der Inspektion fahren Sie kostenlos einen Ersatzwagen – bitte bei der Terminvereinbarung reservieren.\"\n";
    let p = rig
        .material
        .propose("slots/d001", text, "neu", "ann", 1001, rig.brand())
        .unwrap();
    rig.material.approve(p.id, "bob", 1002, "passt").unwrap();
    assert_eq!(
        heard(),
        [Audience::Tenant(d001()), Audience::Tenant(d001())]
    );
    let p = rig.propose_subject("Inspektion fällig");
    rig.material.reject(p.id, "bob", 1002, "nein").unwrap();
    assert_eq!(heard(), [Audience::Everyone, Audience::Everyone]);
    assert_eq!(slots::audience("slots/../d002"), Audience::ScopeOverAll);
}

/// The errors proposing `text` as d001's slots gives with `brand`; nothing is stored.
fn slots_refused(rig: &Rig, text: &str, brand: &BrandPolicy) -> Vec<String> {
    let e = rig
        .material
        .propose("slots/d001", text, "", "ann", 1001, brand)
        .unwrap_err();
    assert!(rig.material.proposals(true).unwrap().is_empty());
    let ApprovalError::Invalid(errors) = e else {
        panic!("{e:?}");
    };
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn invalid_slots_proposals_are_refused_with_line_and_reason() {
    let rig = Rig::with_slots();
    let text = format!(
        "[slots]\nfax = \"0531 1\"\nlogo = \"\"\nopening_hours = \"{}\"\nsignature = \"<b>Ihr Team</b>\"\n",
        "ä".repeat(121)
    );
    assert_eq!(
        slots_refused(&rig, &text, rig.brand()),
        [
            "slots/d001.toml (proposal):2: slots.fax: the brand declares no slot \"fax\" (brand.toml [slots] has: local_offer, logo, opening_hours, signature)",
            "slots/d001.toml (proposal):4: slots.opening_hours: is 121 characters long, the brand allows 120",
            "slots/d001.toml (proposal):5: slots.signature: must not contain markup (< or >): the brand allows plain text only",
        ]
    );
    let mut required = rig.brand().clone();
    required.slots.get_mut("signature").unwrap().required = true;
    assert_eq!(
        slots_refused(&rig, "[slots]\nlogo = \"\"\n", &required),
        ["slots/d001.toml (proposal):1: slots.signature: is required by the brand and missing or empty"]
    );
    assert_eq!(
        slots_refused(&rig, "[slots]\nlogo = \"\"\nsignature = 3\n", rig.brand()),
        ["slots/d001.toml (proposal):3: slots.signature: invalid type: integer `3`, expected a string"]
    );
    assert_eq!(
        slots_refused(&rig, "[slots]\n[sender]\nname = \"x\"\n", rig.brand()),
        ["slots/d001.toml (proposal):2: sender: unknown key `sender`, expected `slots`"]
    );
    // The template rules do not apply: no imprint, no unsubscribe link needed.
    rig.material
        .propose(
            "slots/d001",
            "[slots]\nsignature = \"Ihr Team\"\n",
            "",
            "ann",
            1001,
            rig.brand(),
        )
        .unwrap();

    // Names: a registered tenant, and only when the brand reviews slots.
    for bad in ["slots/", "slots/D001", "slots/../d001"] {
        let e = rig
            .material
            .propose(bad, "[slots]\n", "", "ann", 1001, rig.brand())
            .unwrap_err();
        assert!(matches!(e, ApprovalError::BadName(_)), "{bad}: {e:?}");
    }
    let e = rig
        .material
        .propose("slots/d999", "[slots]\n", "", "ann", 1001, rig.brand())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(matches!(e, ApprovalError::UnknownTenant(_)), "{e:?}");
    let mut off = rig.brand().clone();
    off.review.dealer_slots = false;
    let e = rig
        .material
        .propose("slots/d001", "[slots]\n", "", "ann", 1001, &off)
        .unwrap_err();
    assert!(matches!(e, ApprovalError::SlotsNotReviewed), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Invalid);
}

#[test]
fn a_changed_dealer_file_becomes_one_pending_proposal_and_the_approved_slots_stay() {
    let rig = Rig::with_slots();
    let changed = rig.set_with_signature("Ihr neues Serviceteam");
    let seeded = rig.material.seed_slots(&changed).unwrap();
    assert_eq!(
        seeded,
        SeededSlots {
            proposed: vec![(d001(), 1)],
            ..SeededSlots::default()
        }
    );
    let p = rig.material.proposals(false).unwrap().remove(0);
    assert_eq!(p.template, "slots/d001");
    assert_eq!(
        (p.author.as_str(), p.author_uid, p.comment.as_str()),
        (
            "dealers/d001.toml",
            FILE_AUTHOR_UID,
            "slot change in the dealer's policy file"
        )
    );
    assert_eq!(p.base_version, 1);
    // The file is not in force.
    assert_eq!(rig.signature_in_force(), FILE_SIGNATURE);
    // Who proposed it is in the audit log.
    let audit = rig
        .material
        .stores
        .central()
        .audit_log(Some(&d001()), 10)
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].user.as_str(), audit[0].action.as_str()),
        ("dealers/d001.toml", "propose")
    );
    assert_eq!(
        audit[0].detail,
        "proposal #1 for template slots/d001 (base v1): slot change in the dealer's policy file"
    );

    // Reloads while it is pending add nothing.
    assert_eq!(
        rig.material.seed_slots(&changed).unwrap(),
        SeededSlots {
            pending: vec![(d001(), 1)],
            ..SeededSlots::default()
        }
    );
    assert_eq!(rig.material.proposals(true).unwrap().len(), 1);

    // Any reviewer approves it; then the file is what is in force.
    rig.material.approve(p.id, "bob", 1002, "ok").unwrap();
    assert_eq!(rig.signature_in_force(), "Ihr neues Serviceteam");
    assert_eq!(
        rig.material.seed_slots(&changed).unwrap(),
        SeededSlots::default()
    );

    // A rejected change is not proposed again until the file changes again.
    let again = rig.set_with_signature("Ihr Team");
    assert_eq!(
        rig.material.seed_slots(&again).unwrap().proposed,
        [(d001(), 2)]
    );
    rig.material.reject(2, "bob", 1002, "zu knapp").unwrap();
    assert_eq!(
        rig.material.seed_slots(&again).unwrap(),
        SeededSlots {
            rejected: vec![(d001(), 2)],
            ..SeededSlots::default()
        }
    );
    assert_eq!(rig.signature_in_force(), "Ihr neues Serviceteam");
    let third = rig.set_with_signature("Ihr Team Müller");
    assert_eq!(
        rig.material.seed_slots(&third).unwrap().proposed,
        [(d001(), 3)]
    );
}

#[test]
fn with_review_off_the_store_holds_no_slots_and_the_files_are_used() {
    let rig = Rig::new();
    let mut set = rig.set_with_signature("Ihr neues Serviceteam");
    set.brand.review.dealer_slots = false;
    assert_eq!(
        rig.material.seed_slots(&set).unwrap(),
        SeededSlots::default()
    );
    // Nothing to put in place of the file's slots.
    assert_eq!(rig.material.slots_in_force(&d001()).unwrap(), None);
    assert!(rig.material.proposals(true).unwrap().is_empty());
    assert!(rig
        .material
        .history(None)
        .unwrap()
        .iter()
        .all(|h| !h.name.starts_with("slots/")));
}

#[test]
fn a_slots_proposal_is_previewed_for_its_dealer_with_the_proposed_values() {
    use touchpoint_common::domain::ImportReport;

    let rig = Rig::with_slots();
    let store = rig.material.stores.tenant(&d001()).unwrap();
    let id = store.next_import_id().unwrap();
    let mut tx = store.begin_import(id).unwrap();
    tx.put_customer(&crate::testkit::person("K1").email().build())
        .unwrap();
    tx.commit(&ImportReport::new(
        id,
        d001(),
        "kunden.csv",
        "h1",
        Timestamp(0),
    ))
    .unwrap();
    let policies = crate::policy::load_dir(&policies_dir()).unwrap();

    let changed = rig.set_with_signature("Signatur NEU");
    rig.material.seed_slots(&changed).unwrap();
    let t = rig.material.proposed_template(1).unwrap();
    let pv = preview::preview(&rig.material.stores, &policies, 1, &t, &d001(), None).unwrap();
    assert!(pv.text.contains("Signatur NEU"), "{}", pv.text);
    assert!(!pv.text.contains("Daniel Winter"), "{}", pv.text);
    assert!(pv.letter.contains("Signatur NEU"), "{}", pv.letter);

    // Another dealer's customers do not preview d001's slots.
    let e = preview::preview(
        &rig.material.stores,
        &policies,
        1,
        &t,
        &TenantId::new("d002").unwrap(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "proposal #1 changes slots/d001; preview it for that dealer, not d002"
    );
}
