//! Policy files (M4): the brand file and one file per dealer, read and
//! validated as a whole. A set with any error is refused and the previous one
//! stays in force. This issue covers identity and import settings; the
//! service catalogue and hot reload on file changes build on it.
//!
//! ```text
//! <policy_dir>/brand.toml
//! <policy_dir>/dealers/<tenant-id>.toml
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use touchpoint_common::config::{parse_toml, BrandPolicy, ConfigError, TenantPolicy};
use touchpoint_common::domain::Timestamp;
use touchpoint_common::protocol::PolicyStatus;
use touchpoint_common::TenantId;

/// A complete, validated set of policies.
#[derive(Clone, Debug)]
pub struct Policies {
    pub dir: PathBuf,
    pub brand: BrandPolicy,
    pub tenants: BTreeMap<TenantId, TenantPolicy>,
    /// Files read, relative to `dir`.
    pub files: Vec<String>,
    pub loaded_at: Timestamp,
}

impl Policies {
    pub fn tenant(&self, id: &TenantId) -> Option<&TenantPolicy> {
        self.tenants.get(id)
    }
}

/// Reads and validates every policy file under `dir`. Returns all errors
/// found, not just the first, each located by file, line and key.
pub fn load_dir(dir: &Path) -> Result<Policies, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    let shown = |p: &Path| p.display().to_string();

    let brand_path = dir.join("brand.toml");
    let brand = match std::fs::read_to_string(&brand_path) {
        Ok(text) => {
            files.push("brand.toml".to_string());
            parse_toml::<BrandPolicy>(&shown(&brand_path), &text)
                .map_err(|e| errors.push(e))
                .ok()
        }
        Err(e) => {
            errors.push(file_error(&brand_path, format!("cannot read: {e}")));
            None
        }
    };

    let mut tenants = BTreeMap::new();
    let dealers = dir.join("dealers");
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(&dealers) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            errors.push(file_error(&dealers, format!("cannot read directory: {e}")));
            Vec::new()
        }
    };
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(file_error(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        let rel = format!(
            "dealers/{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        files.push(rel);
        let policy = match parse_toml::<TenantPolicy>(&shown(&path), &text) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if policy.tenant.id.as_str() != stem {
            errors.push(touchpoint_common::config::invalid(
                &shown(&path),
                &text,
                "tenant.id",
                format!(
                    "{:?} does not match the file name; a dealer's file must be named <tenant-id>.toml ({}.toml)",
                    policy.tenant.id.as_str(),
                    policy.tenant.id
                ),
            ));
            continue;
        }
        tenants.insert(policy.tenant.id.clone(), policy);
    }

    match brand {
        Some(brand) if errors.is_empty() => Ok(Policies {
            dir: dir.to_path_buf(),
            brand,
            tenants,
            files,
            loaded_at: Timestamp::now(),
        }),
        _ => Err(errors),
    }
}

fn file_error(path: &Path, message: String) -> ConfigError {
    ConfigError {
        file: path.display().to_string(),
        line: None,
        key: String::new(),
        message,
    }
}

/// The policies in force, shared by every subsystem. Readers take a cheap
/// snapshot (`current()`); a reload swaps the whole set at once.
pub struct PolicyHandle {
    tx: watch::Sender<Arc<Policies>>,
    last_errors: Mutex<Vec<String>>,
}

impl PolicyHandle {
    pub fn new(initial: Policies) -> Self {
        Self {
            tx: watch::Sender::new(Arc::new(initial)),
            last_errors: Mutex::new(Vec::new()),
        }
    }

    pub fn current(&self) -> Arc<Policies> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Policies>> {
        self.tx.subscribe()
    }

    /// Re-reads the directory. On success `prepare` runs on the new set
    /// (registering new tenants, say) and then the set is in force; on any
    /// error the old one stays and the errors are kept for `status`.
    pub fn reload(
        &self,
        prepare: impl FnOnce(&Policies) -> Result<(), ConfigError>,
    ) -> Result<Arc<Policies>, Vec<ConfigError>> {
        let dir = self.current().dir.clone();
        match load_dir(&dir).and_then(|p| prepare(&p).map(|_| p).map_err(|e| vec![e])) {
            Ok(p) => {
                let p = Arc::new(p);
                self.tx.send_replace(p.clone());
                self.errors().clear();
                Ok(p)
            }
            Err(errs) => {
                *self.errors() = errs.iter().map(ToString::to_string).collect();
                Err(errs)
            }
        }
    }

    fn errors(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.last_errors.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> PolicyStatus {
        let p = self.current();
        PolicyStatus {
            dir: p.dir.display().to_string(),
            loaded_at: p.loaded_at,
            files: p.files.clone(),
            errors: self.errors().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    const BRAND: &str = "[brand]\nid = \"nordwagen\"\nname = \"Nordwagen\"\n";

    #[test]
    fn loads_a_valid_set() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "brand.toml", BRAND);
        write(
            d.path(),
            "dealers/d001.toml",
            "[tenant]\nid = \"d001\"\nname = \"Autohaus A\"\n",
        );
        let p = load_dir(d.path()).expect("valid");
        assert_eq!(p.tenants.len(), 1);
        assert_eq!(p.files, ["brand.toml", "dealers/d001.toml"]);
    }

    #[test]
    fn reports_every_error_with_file_and_line_and_keeps_the_old_set() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "brand.toml", BRAND);
        write(
            d.path(),
            "dealers/d001.toml",
            "[tenant]\nid = \"d001\"\nname = \"A\"\n",
        );
        let handle = PolicyHandle::new(load_dir(d.path()).expect("valid"));

        write(
            d.path(),
            "dealers/d002.toml",
            "[tenant]\nid = \"d003\"\nname = \"B\"\n",
        );
        write(
            d.path(),
            "dealers/d004.toml",
            "[tenant]\nid = \"d004\"\nname = \"C\"\ncolour = 1\n",
        );
        let errs = handle.reload(|_| Ok(())).expect_err("invalid");
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert!(shown[0].ends_with("d002.toml:2: tenant.id: \"d003\" does not match the file name; a dealer's file must be named <tenant-id>.toml (d003.toml)"), "{}", shown[0]);
        assert!(shown[1].contains("d004.toml:4"), "{}", shown[1]);
        assert!(shown[1].contains("colour"), "{}", shown[1]);
        assert_eq!(handle.current().tenants.len(), 1, "old set stays in force");
        assert_eq!(handle.status().errors.len(), 2);
    }
}
