//! Hot reload of the policy directory (M4): a saved change is in force within
//! a second, without SIGHUP; a mistake is refused, shown by `touchpoint
//! status` with file and line, and the previous policy stays in force until
//! the file is fixed.

use std::path::Path;
use std::time::{Duration, Instant};

use touchpoint_tests::{touchpoint, TestDaemon};

/// The daemon promises one second; the deadline is generous so that a
/// loaded machine does not fail the test. The time taken is printed.
const DEADLINE: Duration = Duration::from_secs(5);

/// A valid dealer file taking part in the two reminder services.
fn dealer_policy(id: &str, name: &str) -> String {
    format!(
        "[tenant]\nid = \"{id}\"\nname = \"{name}\"\n\n[services.service_due]\nmonthly_budget = 100\n\n[services.hu_reminder]\nmonthly_budget = 50\n"
    )
}

async fn names(d: &TestDaemon) -> Vec<(String, String)> {
    d.client()
        .await
        .tenants()
        .await
        .expect("tenants")
        .into_iter()
        .map(|t| (t.id.to_string(), t.name))
        .collect()
}

async fn name_of(d: &TestDaemon, id: &str) -> Option<String> {
    names(d)
        .await
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, n)| n)
}

/// Polls until `cond` holds and returns how long it took.
async fn within<F, Fut>(what: &str, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    eprintln!("{what}: {} ms", took.as_millis());
    took
}

fn status_text(d: &TestDaemon) -> String {
    let out = touchpoint(&d.socket, &["status"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Saves `text` to `path` the way many editors do: into a temp file next to
/// it, then renamed over it.
fn save_by_rename(path: &Path, text: &str) {
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test]
async fn a_saved_change_is_in_force_without_sighup_a_mistake_is_shown_and_a_fix_clears_it() {
    let d = TestDaemon::start();
    let d002 = d.policy_dir.join("dealers/d002.toml");
    // The first use of the binary builds it; not part of any timing below.
    assert!(status_text(&d).contains("policy       valid"));

    // A valid edit, written in place.
    std::fs::write(&d002, dealer_policy("d002", "Autohaus Weiß & Söhne KG")).expect("write");
    within("valid edit in force", || async {
        name_of(&d, "d002").await.as_deref() == Some("Autohaus Weiß & Söhne KG")
    })
    .await;

    // A mistake: refused with file and line; the edit before it stays.
    let broken = format!(
        "{}\n[channels]\ndaily_capacity = \"viele\"\n",
        dealer_policy("d002", "Autohaus Kaputt")
    );
    let line = broken.lines().count();
    std::fs::write(&d002, &broken).expect("write");
    let at = format!("{}:{line}: channels.daily_capacity: ", d002.display());
    within("mistake shown by touchpoint status", || async {
        status_text(&d).contains(&at)
    })
    .await;
    let text = status_text(&d);
    assert!(
        text.starts_with(
            "POLICY ERRORS: the last change to the policy files was refused (1 error)"
        ),
        "{text}"
    );
    assert_eq!(
        name_of(&d, "d002").await.as_deref(),
        Some("Autohaus Weiß & Söhne KG"),
        "the previous policy stays in force"
    );

    // The fix clears the error and is in force.
    std::fs::write(&d002, dealer_policy("d002", "Autohaus Weiß KG")).expect("write");
    within("fix in force and the error gone", || async {
        name_of(&d, "d002").await.as_deref() == Some("Autohaus Weiß KG")
            && !status_text(&d).contains("error")
    })
    .await;
    assert!(
        status_text(&d).contains("policy       valid"),
        "{}",
        status_text(&d)
    );
    d.stop();
}

#[tokio::test]
async fn an_editor_replacing_files_and_a_new_dealer_are_picked_up() {
    let d = TestDaemon::start();
    let dealers = d.policy_dir.join("dealers");

    // Editors' leftovers are not policy files: a swap file with nonsense in
    // it changes nothing and reports nothing.
    std::fs::write(dealers.join(".d001.toml.swp"), "\0\0binary").expect("swap");
    std::fs::write(dealers.join("d001.toml~"), "[tenant]\nid = 1\n").expect("backup");

    save_by_rename(
        &dealers.join("d001.toml"),
        &dealer_policy("d001", "Autohaus Müller & Co."),
    );
    within("renamed-over file in force", || async {
        name_of(&d, "d001").await.as_deref() == Some("Autohaus Müller & Co.")
    })
    .await;

    // A new dealer: registered (with its inbox) by the reload itself.
    save_by_rename(
        &dealers.join("d004.toml"),
        &dealer_policy("d004", "Autohaus Neu"),
    );
    within("new dealer registered", || async {
        name_of(&d, "d004").await.as_deref() == Some("Autohaus Neu")
    })
    .await;
    assert!(d.inbox("d004").is_dir(), "the new dealer has its inbox");
    let s = d.client().await.status().await.expect("status");
    assert!(s.policy.errors.is_empty(), "{:?}", s.policy.errors);
    assert!(
        !s.policy
            .files
            .iter()
            .any(|f| f.contains(".swp") || f.ends_with('~')),
        "{:?}",
        s.policy.files
    );

    // A broken brand file keeps every dealer as it was.
    let brand = d.policy_dir.join("brand.toml");
    let good = std::fs::read_to_string(&brand).expect("brand");
    save_by_rename(&brand, &good.replace("lead_days = 28", "lead_days = 0"));
    within("brand mistake shown", || async {
        let s = d.client().await.status().await.expect("status");
        s.policy
            .errors
            .iter()
            .any(|e| e.contains("brand.toml:") && e.contains("services.hu_reminder.lead_days"))
    })
    .await;
    assert_eq!(name_of(&d, "d004").await.as_deref(), Some("Autohaus Neu"));
    save_by_rename(&brand, &good);
    within("brand fixed", || async {
        d.client()
            .await
            .status()
            .await
            .expect("status")
            .policy
            .errors
            .is_empty()
    })
    .await;
    d.stop();
}
