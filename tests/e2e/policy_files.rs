//! The policy test folders (`tests/policies/`): every valid directory loads,
//! every invalid case produces exactly the errors in its `expected.txt`. A
//! new folder is a new case. `TOUCHPOINT_REGENERATE=1` rewrites the
//! `expected.txt` files from what validation says now (review the diff).

use std::path::Path;

use touchpoint_common::policy::PolicySet;
use touchpoint_common::toml_file::ConfigError;
use touchpoint_tests::{materialize_policy_case, policy_cases};

/// What the daemon does with a directory, with file names relative to it.
fn check(dir: &Path) -> Result<PolicySet, Vec<ConfigError>> {
    let files = touchpointd::policy::read_dir(dir, "")?;
    touchpoint_common::render::lint::validate(&files, "")
}

fn name(case: &Path) -> String {
    case.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn valid_policy_directories_load() {
    let cases = policy_cases("valid");
    assert!(cases.len() >= 3, "{cases:?}");
    for case in cases {
        if let Err(errs) = check(&case) {
            let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
            panic!("{}:\n{}", name(&case), shown.join("\n"));
        }
    }
}

#[test]
fn invalid_policy_cases_give_exactly_the_expected_errors() {
    let regenerate = std::env::var_os("TOUCHPOINT_REGENERATE").is_some();
    let cases = policy_cases("invalid");
    assert!(cases.len() >= 16, "{cases:?}");
    let mut failures = Vec::new();
    for case in cases {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = materialize_policy_case(&case, tmp.path());
        let got: Vec<String> = match check(&dir) {
            Ok(_) => vec!["(valid)".into()],
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
        };
        let expected_file = case.join("expected.txt");
        if regenerate {
            std::fs::write(&expected_file, got.join("\n") + "\n").expect("write expected.txt");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_file.display()));
        let expected: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
        if got != expected {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  got:\n    {}",
                name(&case),
                expected.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each error names a file, and a line wherever the file has one to name.
#[test]
fn every_expected_error_is_located() {
    if std::env::var_os("TOUCHPOINT_REGENERATE").is_some() {
        return;
    }
    for case in policy_cases("invalid") {
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap_or_default();
        for line in expected.lines().filter(|l| !l.is_empty()) {
            let (file, rest) = line.split_once(':').unwrap_or((line, ""));
            assert!(
                file == "brand.toml"
                    || file.starts_with("dealers/")
                    || file.starts_with("templates/"),
                "{}: {line}",
                name(&case)
            );
            let file_level = rest.starts_with(" missing") || rest.starts_with(" cannot read");
            let has_line = rest
                .split(':')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok());
            assert!(
                has_line || file_level,
                "{}: no line in {line:?}",
                name(&case)
            );
        }
    }
}
