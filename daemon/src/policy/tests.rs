use super::*;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

const BRAND: &str = r#"[brand]
id = "nordwagen"
name = "Nordwagen"

[planning]
schedule = "0 30 5 * * *"
horizon_days = 14
bundling_window_days = 30
default_km_per_day = 40
min_value = 1

[contact]
max_contacts = 3
period_days = 90
min_gap_days = 14

[channels.email]
cost = 0.02
consent = "opt_in"

[channels.post]
cost = 0.95
consent = "opt_out"

[channels.phone]
cost = 2.5
consent = "opt_in"

[services.birthday]
name = "Birthday"
occasion = "birthday"
template = "birthday"
lead_days = 3
value = 2
channels = ["email"]
"#;

fn dealer(id: &str, name: &str) -> String {
    format!(
        "[tenant]\nid = \"{id}\"\nname = \"{name}\"\n\n[services.birthday]\nmonthly_budget = 10\n"
    )
}

/// A valid directory with dealer d001.
fn valid_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "brand.toml", BRAND);
    write(
        d.path(),
        "templates/birthday.toml",
        "subject = \"Alles Gute\"\ntext = \"\"\nhtml = \"\"\nletter = \"\"\n",
    );
    write(d.path(), "dealers/d001.toml", &dealer("d001", "Autohaus A"));
    d
}

#[test]
fn loads_a_valid_set() {
    let d = valid_dir();
    // Not policy files: editors' leftovers and other folders.
    write(d.path(), "dealers/.d001.toml.swp", "x");
    write(d.path(), "dealers/d001.toml~", "x");
    write(d.path(), "dealers/old/d009.toml", "x");
    write(d.path(), "README.md", "x");
    let p = load_dir(d.path()).expect("valid");
    assert_eq!(p.tenants.len(), 1);
    assert_eq!(
        p.files,
        ["brand.toml", "dealers/d001.toml", "templates/birthday.toml"]
    );
}

#[test]
fn reports_every_error_with_file_and_line_and_keeps_the_old_set() {
    let d = valid_dir();
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

#[test]
fn retention_keeps_everything_unless_set_and_refuses_nonsense_by_its_field() {
    let d = valid_dir();
    let p = load_dir(d.path()).expect("valid");
    assert!(!p.brand.retention.is_set(), "kept for ever by default");

    write(
        d.path(),
        "brand.toml",
        &format!("{BRAND}\n[retention]\nmessages_months = 24\naudit_months = 120\n"),
    );
    let p = load_dir(d.path()).expect("valid");
    assert_eq!(p.brand.retention.messages_months, Some(24));
    assert_eq!(p.brand.retention.responses_months, None);
    assert_eq!(p.brand.retention.audit_months, Some(120));

    write(
        d.path(),
        "brand.toml",
        &format!(
            "{BRAND}\n[retention]\nmessages_months = 0\nresponses_months = 100000\naudit_months = 12\n"
        ),
    );
    let errs = load_dir(d.path()).expect_err("invalid");
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let line = BRAND.lines().count() + 3;
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown[0].ends_with(&format!(
            "brand.toml:{line}: retention.messages_months: must be between 1 and 360, got 0"
        )),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].ends_with(&format!(
            "brand.toml:{}: retention.responses_months: must be between 1 and 360, got 100000",
            line + 1
        )),
        "{}",
        shown[1]
    );
}

#[test]
fn a_file_that_is_not_utf8_is_located() {
    let d = valid_dir();
    std::fs::write(
        d.path().join("dealers/d002.toml"),
        b"[tenant]\nid = \"d002\"\nname = \"Autohaus Wei\xdf\"\n",
    )
    .expect("write");
    let errs = load_dir(d.path()).expect_err("invalid");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, Some(3), "{}", errs[0]);
    assert!(errs[0].file.ends_with("dealers/d002.toml"));
    assert!(errs[0].message.contains("UTF-8"), "{}", errs[0]);
}

#[test]
fn reload_if_changed_swaps_only_a_changed_set_and_clears_old_errors() {
    let d = valid_dir();
    let handle = PolicyHandle::new(load_dir(d.path()).expect("valid"));
    let first = handle.current();
    assert!(matches!(
        handle.reload_if_changed(|_| Ok(())),
        Ok(Reloaded::Unchanged)
    ));
    assert!(Arc::ptr_eq(&first, &handle.current()));

    let good = dealer("d001", "Autohaus A");
    write(d.path(), "dealers/d001.toml", "[tenant]\nid = 1\n");
    assert!(handle.reload_if_changed(|_| Ok(())).is_err());
    assert_eq!(handle.status().errors.len(), 1);
    // Undoing the mistake leaves the set as it was and clears the error.
    write(d.path(), "dealers/d001.toml", &good);
    assert!(matches!(
        handle.reload_if_changed(|_| Ok(())),
        Ok(Reloaded::Unchanged)
    ));
    assert!(handle.status().errors.is_empty());

    write(d.path(), "dealers/d001.toml", &dealer("d001", "Autohaus B"));
    let mut prepared = false;
    match handle.reload_if_changed(|_| {
        prepared = true;
        Ok(())
    }) {
        Ok(Reloaded::Changed(p)) => assert_eq!(
            p.tenants.values().next().map(|t| t.tenant.name.as_str()),
            Some("Autohaus B")
        ),
        other => panic!("{other:?}"),
    }
    assert!(prepared);
}

#[test]
fn only_policy_files_are_watched() {
    let root = Path::new("/etc/tp");
    for (path, want) in [
        ("/etc/tp/brand.toml", true),
        ("/etc/tp/dealers/d001.toml", true),
        ("/etc/tp/templates/birthday.toml", true),
        ("/etc/tp/dealers", true),
        ("/etc/tp", true),
        ("/etc/tp/dealers/.d001.toml.swp", false),
        ("/etc/tp/dealers/d001.toml~", false),
        ("/etc/tp/dealers/4913", false),
        ("/etc/tp/dealers/old/d001.toml", false),
        ("/etc/tp/touchpointd.toml", false),
        ("/etc/other/brand.toml", false),
    ] {
        assert_eq!(is_policy_path(root, Path::new(path)), want, "{path}");
    }
}

fn name_of(handle: &PolicyHandle, id: &str) -> Option<String> {
    let id = touchpoint_common::TenantId::new(id).expect("id");
    handle.current().tenant(&id).map(|t| t.tenant.name.clone())
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    // Generous for a loaded machine; the daemon's promise is one second.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn watch_reloads_on_change_and_keeps_the_old_set_on_a_mistake() {
    let d = valid_dir();
    let handle = Arc::new(PolicyHandle::new(load_dir(d.path()).expect("valid")));
    let prepared = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = prepared.clone();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(watch(
        handle.clone(),
        move |_: &Policies| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        },
        shutdown.clone(),
    ));

    // A new dealer, written in place.
    write(
        d.path(),
        "dealers/d002.toml",
        &dealer("d002", "Autohaus Zwei"),
    );
    until("new dealer", || name_of(&handle, "d002").is_some()).await;
    assert!(prepared.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // A mistake: the old set stays, the error is in the status.
    write(
        d.path(),
        "dealers/d002.toml",
        "[tenant]\nid = \"d002\"\nname = 7\n",
    );
    until("error shown", || !handle.status().errors.is_empty()).await;
    assert_eq!(name_of(&handle, "d002").as_deref(), Some("Autohaus Zwei"));
    let errors = handle.status().errors;
    assert!(
        errors[0].contains("dealers/d002.toml:3: tenant.name"),
        "{errors:?}"
    );

    // An editor's save: a temp file renamed over the old one.
    let tmp = d.path().join("dealers/.d002.toml.tmp");
    std::fs::write(&tmp, dealer("d002", "Autohaus Zwo")).expect("write");
    std::fs::rename(&tmp, d.path().join("dealers/d002.toml")).expect("rename");
    until("renamed file", || {
        name_of(&handle, "d002").as_deref() == Some("Autohaus Zwo")
    })
    .await;
    assert!(handle.status().errors.is_empty());

    // A removed dealer is gone from the set.
    std::fs::remove_file(d.path().join("dealers/d002.toml")).expect("rm");
    until("removed", || name_of(&handle, "d002").is_none()).await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("watch ends on shutdown")
        .expect("watch task");
}
