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
use touchpoint_common::config::ConfigError;
use touchpoint_common::policy::PolicySet;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::protocol::PolicyStatus;

/// A complete, validated set of policies and where it came from.
#[derive(Clone, Debug)]
pub struct Policies {
    pub dir: PathBuf,
    pub set: PolicySet,
    pub loaded_at: Timestamp,
}

impl std::ops::Deref for Policies {
    type Target = PolicySet;
    fn deref(&self) -> &PolicySet {
        &self.set
    }
}

/// Reads every policy file under `dir` (`brand.toml`, `dealers/*.toml`,
/// `templates/*.toml`) into `relative path -> text`.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>, Vec<ConfigError>> {
    let mut files = BTreeMap::new();
    let mut errors = Vec::new();
    let read = |files: &mut BTreeMap<_, _>, errors: &mut Vec<_>, rel: String, path: &Path| {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                files.insert(rel, text);
            }
            Err(e) => errors.push(file_error(path, format!("cannot read: {e}"))),
        }
    };
    let brand = dir.join("brand.toml");
    if brand.exists() {
        read(&mut files, &mut errors, "brand.toml".into(), &brand);
    }
    for sub in ["dealers", "templates"] {
        let d = dir.join(sub);
        let entries = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && sub == "templates" => continue,
            Err(e) => {
                errors.push(file_error(&d, format!("cannot read directory: {e}")));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            // Editors' swap and backup files (".x.toml.swp", "x.toml~") end otherwise.
            if !name.ends_with(".toml") || name.starts_with('.') || !path.is_file() {
                continue;
            }
            read(&mut files, &mut errors, format!("{sub}/{name}"), &path);
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// Reads and validates every policy file under `dir`. Returns all errors
/// found, not just the first, each located by file, line and key.
pub fn load_dir(dir: &Path) -> Result<Policies, Vec<ConfigError>> {
    let files = read_dir(dir)?;
    let set = PolicySet::validate(&files, &dir.display().to_string())?;
    Ok(Policies {
        dir: dir.to_path_buf(),
        set,
        loaded_at: Timestamp::now(),
    })
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
