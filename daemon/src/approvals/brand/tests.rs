//! `brand` as brand material on a real central store and a copy of the
//! shipped policy directory (whose brand reviews its own file), loaded the
//! way the daemon loads it: [`crate::policy::load_dir_with`] with the
//! material's override.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use touchpoint_common::config::StoresConfig;
use touchpoint_common::protocol::ProposalStatus;

use super::*;
use crate::approvals::{ApprovalError, Material, FILE_AUTHOR_UID};
use crate::policy::{self, Override, PolicyHandle};
use crate::store::Stores;

const TO: &str = "to = 2027-01-31";
const NEW_TO: &str = "to = 2027-02-28";

struct Rig {
    dir: tempfile::TempDir,
    material: Arc<Material>,
}

impl Rig {
    /// The shipped policies in a temp dir, `brand.toml` with `review` as
    /// its `[review] brand`, seeded as the daemon seeds them at start.
    fn new(review: bool) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let policies = dir.path().join("policies");
        for sub in ["dealers", "templates"] {
            std::fs::create_dir_all(policies.join(sub)).unwrap();
            for e in std::fs::read_dir(shipped.join(sub)).unwrap().flatten() {
                std::fs::copy(e.path(), policies.join(sub).join(e.file_name())).unwrap();
            }
        }
        let brand = std::fs::read_to_string(shipped.join(FILE)).unwrap();
        assert!(
            brand.contains("\nbrand = true\n"),
            "shipped brand reviews itself"
        );
        assert!(brand.contains(TO), "shipped campaign: {TO}");
        let brand = brand.replacen("\nbrand = true\n", &format!("\nbrand = {review}\n"), 1);
        std::fs::write(policies.join(FILE), &brand).unwrap();
        let stores =
            Arc::new(Stores::open(&dir.path().join("state"), &StoresConfig::default()).unwrap());
        let material = Arc::new(Material::new(stores).with_policy_dir(policies));
        let rig = Rig { dir, material };
        // The first start: the file is version 1.
        let p = rig.load().unwrap();
        assert_eq!(
            rig.material.seed_brand(&rig.disk()).unwrap(),
            SeededBrand::Added
        );
        assert_eq!(p.brand.review.brand, review);
        rig
    }

    fn policies(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    fn disk(&self) -> String {
        std::fs::read_to_string(self.policies().join(FILE)).unwrap()
    }

    fn write(&self, text: &str) {
        std::fs::write(self.policies().join(FILE), text).unwrap();
    }

    /// The daemon's own override.
    fn over(&self) -> Override {
        crate::daemon::brand_override(self.material.clone())
    }

    fn load(&self) -> Result<policy::Policies, Vec<ConfigError>> {
        policy::load_dir_with(&self.policies(), Some(&self.over()))
    }

    fn files(&self) -> BTreeMap<String, String> {
        policy::read_dir(&self.policies(), "").unwrap()
    }

    fn propose(&self, text: &str) -> Result<touchpoint_common::protocol::Proposal, ApprovalError> {
        let brand = self.load().unwrap().set.brand;
        self.material
            .propose(NAME, text, "campaign a month longer", "ann", 1001, &brand)
    }
}

fn to_of(brand: &BrandPolicy) -> Option<touchpoint_common::policy::PolicyDate> {
    brand.services["winter_check"].to
}

#[test]
fn a_campaign_change_is_proposed_with_its_diff() {
    let rig = Rig::new(true);
    let text = rig.disk().replacen(TO, NEW_TO, 1);
    let p = rig.propose(&text).unwrap();
    assert_eq!(p.template, NAME);
    assert_eq!(p.base_version, 1);
    assert_eq!(p.status, ProposalStatus::Pending);
    let d = rig.material.detail(p.id).unwrap();
    assert!(d.diff.contains(&format!("\n-{TO}\n")), "{}", d.diff);
    assert!(d.diff.contains(&format!("\n+{NEW_TO}\n")), "{}", d.diff);
    assert!(d.diff.contains("brand v1 (in force)"), "{}", d.diff);
    // The same text again is not a change.
    let e = rig.propose(&rig.disk()).unwrap_err();
    assert!(matches!(e, ApprovalError::Unchanged { .. }), "{e}");
}

#[test]
fn a_service_a_dealer_references_cannot_be_removed() {
    let rig = Rig::new(true);
    let text = rig
        .disk()
        .replace("[services.winter_check]", "[services.winter_days]")
        .replace("[services.winter_check.", "[services.winter_days.");
    let e = rig.propose(&text).unwrap_err();
    let ApprovalError::Invalid(errors) = &e else {
        panic!("not refused as invalid: {e}");
    };
    let d001 = errors
        .iter()
        .find(|e| e.file == "dealers/d001.toml")
        .unwrap_or_else(|| panic!("no error in d001's file: {e}"));
    assert_eq!(d001.line, Some(64), "{d001}");
    assert!(
        d001.to_string()
            .starts_with("dealers/d001.toml:64: services.winter_check"),
        "{d001}"
    );
    // A broken brand text is named as the proposal.
    let e = rig.propose("[brand\n").unwrap_err();
    assert!(e.to_string().starts_with(PROPOSAL_FILE), "{e}");
    assert!(rig.material.proposals(false).unwrap().is_empty());
}

#[test]
fn an_edited_file_is_proposed_once_and_in_force_only_when_approved() {
    let rig = Rig::new(true);
    let handle = PolicyHandle::new(rig.load().unwrap());
    handle.set_override(rig.over());
    let old = to_of(&handle.current().brand);
    let new_text = rig.disk().replacen(TO, NEW_TO, 1);
    let new = to_of(&check(&rig.files(), &new_text, FILE).unwrap());
    assert_ne!(old, new);

    rig.write(&new_text);
    let mut files = rig.files();
    let found = rig.material.brand_override(&mut files).unwrap();
    let BrandFile::Proposed(id) = found else {
        panic!("not proposed: {found:?}");
    };
    assert_ne!(files[FILE], new_text, "the approved text replaces the file");
    handle.reload(|_| Ok(())).unwrap();
    assert_eq!(to_of(&handle.current().brand), old, "not in force yet");
    // Every later load finds it pending: one proposal.
    let list = rig.material.proposals(false).unwrap();
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].author, FILE);
    assert_eq!(list[0].author_uid, FILE_AUTHOR_UID);
    assert_eq!(list[0].text, new_text);

    rig.material.approve(id, "rita", 1002, "ok").unwrap();
    handle.reload(|_| Ok(())).unwrap();
    assert_eq!(to_of(&handle.current().brand), new);
    let mut files = rig.files();
    assert_eq!(
        rig.material.brand_override(&mut files).unwrap(),
        BrandFile::InForce
    );
}

#[test]
fn a_rejected_or_broken_file_is_not_proposed_again() {
    let rig = Rig::new(true);
    rig.write(&rig.disk().replacen(TO, NEW_TO, 1));
    let mut files = rig.files();
    let BrandFile::Proposed(id) = rig.material.brand_override(&mut files).unwrap() else {
        panic!("not proposed");
    };
    rig.material
        .reject(id, "rita", 1002, "not this winter")
        .unwrap();
    let mut files = rig.files();
    assert_eq!(
        rig.material.brand_override(&mut files).unwrap(),
        BrandFile::Rejected(id)
    );
    rig.write("[brand\n");
    let mut files = rig.files();
    let found = rig.material.brand_override(&mut files).unwrap();
    assert!(
        matches!(found, BrandFile::Invalid(ref e) if !e.is_empty()),
        "{found:?}"
    );
    // A load refuses it like any broken policy file, with its line (the
    // policies in force stay, as on every refused load), and nothing is
    // proposed.
    let errs = rig.load().expect_err("a broken brand.toml loads");
    let shown = format!("{}/{FILE}:1", rig.policies().display());
    assert!(
        errs.iter().any(|e| e.to_string().starts_with(&shown)),
        "{errs:?}"
    );
    assert_eq!(rig.material.proposals(false).unwrap().len(), 0);
}

#[test]
fn with_review_off_the_file_applies_directly_and_is_recorded() {
    let rig = Rig::new(false);
    let new_text = rig.disk().replacen(TO, NEW_TO, 1);
    rig.write(&new_text);
    let p = rig.load().unwrap();
    assert_eq!(
        to_of(&p.brand),
        to_of(&check(&rig.files(), &new_text, FILE).unwrap())
    );
    assert_eq!(
        rig.material.seed_brand(&new_text).unwrap(),
        SeededBrand::Recorded(2)
    );
    assert!(rig.material.proposals(false).unwrap().is_empty());
    let e = rig
        .material
        .propose(
            NAME,
            &rig.disk().replacen(NEW_TO, TO, 1),
            "back",
            "ann",
            1001,
            &p.brand,
        )
        .unwrap_err();
    assert!(matches!(e, ApprovalError::BrandNotReviewed), "{e}");
    // Turning the review on in the file: in force as read, and from then
    // on the file is reviewed.
    let on = new_text.replacen("\nbrand = false\n", "\nbrand = true\n", 1);
    rig.write(&on);
    assert!(rig.load().unwrap().brand.review.brand);
    assert_eq!(
        rig.material.seed_brand(&on).unwrap(),
        SeededBrand::Recorded(3)
    );
    rig.write(&on.replacen(NEW_TO, TO, 1));
    assert_eq!(to_of(&rig.load().unwrap().brand), to_of(&p.brand));
    assert_eq!(rig.material.proposals(false).unwrap().len(), 1);
}
