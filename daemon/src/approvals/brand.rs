//! The brand file itself as brand material (`brand.toml [review] brand`):
//! the service catalogue, the services' content and offer texts and the
//! campaigns are proposed and approved like a template, under the name
//! `brand`, whose text is the whole `brand.toml`.
//!
//! The first start takes the file as version 1. With the review on in the
//! version in force, every load of the policies validates the directory with
//! the approved text in place of `brand.toml` (the dealers' files and the
//! templates are read from disk as always); a file that differs becomes a
//! pending proposal (author `brand.toml`). With the review off, the file is
//! in force as it is read, and each change of it is recorded as the next
//! version, so that turning the review on starts from the file in force.

use std::collections::BTreeMap;

use touchpoint_common::policy::BrandPolicy;
use touchpoint_common::toml_file::ConfigError;

/// The material name of the brand file.
pub const NAME: &str = "brand";

/// The brand file, relative to the policy directory.
pub const FILE: &str = "brand.toml";

/// How a proposed brand text is named in errors.
pub const PROPOSAL_FILE: &str = "brand.toml (proposal)";

/// Whether `name` names the brand file's material.
pub fn is_brand(name: &str) -> bool {
    name == NAME
}

/// Whether a brand text turns its own review on (`[review] brand = true`);
/// false for a text that is not TOML or says nothing.
pub fn reviewed(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("review")?.get("brand")?.as_bool())
        .unwrap_or(false)
}

/// Validates the policy files `files` (as `crate::policy::read_dir` gives
/// them, named without a prefix) with `brand.toml` replaced by `text`, all
/// or nothing as a load does: a service a dealer's file references that
/// `text` removes is an error of the dealer's file, with its line. Errors in
/// the brand text name it `brand_file`.
pub fn check(
    files: &BTreeMap<String, String>,
    text: &str,
    brand_file: &str,
) -> Result<BrandPolicy, Vec<ConfigError>> {
    let mut files = files.clone();
    files.insert(FILE.to_string(), text.to_string());
    touchpoint_common::render::lint::validate(&files, "")
        .map(|set| set.brand)
        .map_err(|errors| {
            errors
                .into_iter()
                .map(|mut e| {
                    if e.file == FILE {
                        e.file = brand_file.to_string();
                    }
                    e
                })
                .collect()
        })
}

/// What the policy files' `brand.toml` is, against the version in force
/// ([`super::Material::brand_override`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrandFile {
    /// The store has no `brand` yet (the file is seeded once the set is
    /// valid), or the directory has no `brand.toml`.
    NotSeeded,
    /// The review is off in the version in force: the file applies as read.
    Direct,
    /// The file is the version in force.
    InForce,
    /// The file differs and was proposed now, as this proposal.
    Proposed(u64),
    /// The file's change is pending already, as this proposal.
    Pending(u64),
    /// The file's change was rejected against the version in force.
    Rejected(u64),
    /// The file is an earlier version (this one): nothing to propose.
    Earlier(u32),
    /// The file's text would break the policy set: not proposed.
    Invalid(Vec<ConfigError>),
}

/// What [`super::Material::seed_brand`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeededBrand {
    /// Nothing to do.
    Unchanged,
    /// The file is version 1 now.
    Added,
    /// The review is off: the file's change is this version now.
    Recorded(u32),
}

#[cfg(test)]
mod tests;
