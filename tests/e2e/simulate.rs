//! `touchpoint simulate`: a short season of the real daemon against the
//! hidden response model, run as the real binary, with its weekly output
//! and the k-dealer check read back from the run's files.

use touchpoint_tests::bin;

#[test]
fn a_two_week_season_reports_every_week_and_passes_the_k_dealer_check() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("o");
    let out = std::process::Command::new(bin("touchpoint"))
        .args([
            "simulate",
            "--dealers",
            "5",
            "--customers",
            "600",
            "--weeks",
            "2",
            "--seed",
            "3",
            "--policy",
            "fixed",
            "--out",
        ])
        .arg(&out_dir)
        .env_remove("TOUCHPOINT_SOCKET")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run touchpoint simulate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A line per week, then the season.
    let weeks: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("week "))
        .collect();
    assert_eq!(weeks.len(), 2, "{stdout}");
    assert!(
        weeks[0].contains("2027-01-04") && weeks[1].contains("2027-01-11"),
        "{stdout}"
    );
    assert!(weeks.iter().all(|w| w.ends_with("k ok")), "{stdout}");
    assert!(stdout.contains("season: fixed seed 3:"), "{stdout}");

    let run = out_dir.join("fixed-s3");
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("result.json")).expect("result"))
            .expect("json");
    assert_eq!(result["policy"], "fixed");
    assert_eq!(result["seed"], 3);
    let rows = result["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    let mut regret = 0.0;
    for (i, w) in rows.iter().enumerate() {
        assert_eq!(w["week"], i + 1);
        // The daemon planned, sent and held back a control group.
        assert!(w["sent"].as_u64().expect("sent") > 0, "{w}");
        assert!(w["control"].as_u64().expect("control") > 0, "{w}");
        assert!(w["response_rate"].is_number(), "{w}");
        assert!(w["k_violations"].as_array().expect("k").is_empty(), "{w}");
        let r = w["regret_cumulative"].as_f64().expect("regret");
        assert!(r >= regret - 1e-9, "regret never falls: {w}");
        regret = r;
        let (run, oracle) = (
            w["incremental_run"].as_f64().expect("run"),
            w["incremental_oracle"].as_f64().expect("oracle"),
        );
        assert!(run <= oracle + 1e-9, "{w}");
    }
    assert!(result["k_violations"].as_array().expect("k").is_empty());
    // The hidden optimum is reported and is not the policy's lead.
    for t in result["truth"].as_array().expect("truth") {
        assert_ne!(t["lead"], t["policy_lead"], "{t}");
    }
    let csv = std::fs::read_to_string(run.join("weeks.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("week,from,to,sent,control,"));
    // Each working day's visits came in through the import, as DMS exports.
    let exports = std::fs::read_dir(run.join("dms")).expect("dms").count();
    assert!(exports > 0);
}
