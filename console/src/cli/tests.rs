use super::*;
use clap::CommandFactory;
use touchpoint_common::protocol::PauseScope;

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn parses_subcommands_and_global_flags() {
    let cli = Cli::try_parse_from(["touchpoint", "--socket", "/tmp/s", "tenants", "--json"])
        .expect("parse");
    assert_eq!(cli.socket.as_deref(), Some(std::path::Path::new("/tmp/s")));
    assert!(matches!(
        cli.command,
        Some(Command::Tenants {
            out: Output { json: true }
        })
    ));

    let cli = Cli::try_parse_from(["touchpoint", "import", "--tenant", "d001", "a.csv", "b.csv"])
        .expect("parse");
    match cli.command {
        Some(Command::Import { import, out }) => {
            assert_eq!(import.tenant.as_str(), "d001");
            assert_eq!(import.files.len(), 2);
            assert!(!out.json);
        }
        other => panic!("{other:?}"),
    }

    let cli = Cli::try_parse_from(["touchpoint", "--readonly"]).expect("parse");
    assert!(cli.readonly && cli.command.is_none());
}

#[test]
fn rejects_bad_tenant_ids_and_missing_files() {
    assert!(Cli::try_parse_from(["touchpoint", "tenant", "../etc"]).is_err());
    assert!(Cli::try_parse_from(["touchpoint", "import", "--tenant", "d001"]).is_err());
}

#[tokio::test]
async fn readonly_refuses_changes_before_connecting() {
    let cmd = Command::UndoMerge {
        tenant: TenantId::new("d001").expect("id"),
        id: 3,
        out: Output { json: false },
    };
    let err = run_inner(Some("/nonexistent.sock".into()), true, cmd)
        .await
        .expect_err("refused");
    assert_eq!(err.code, EXIT_USAGE);
    assert!(err.message.contains("--readonly"));
}

#[tokio::test]
async fn no_daemon_is_a_connection_error() {
    let cmd = Command::Status {
        out: Output { json: false },
    };
    let err = run_inner(Some("/nonexistent/t.sock".into()), false, cmd)
        .await
        .expect_err("no daemon");
    assert_eq!(err.code, EXIT_UNREACHABLE);
    assert!(
        err.message.contains("is touchpointd running?"),
        "{}",
        err.message
    );
}

fn parse(args: &[&str]) -> Command {
    let mut argv = vec!["touchpoint"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv) {
        Ok(cli) => cli.command.expect("a subcommand"),
        Err(e) => panic!("{args:?}: {e}"),
    }
}

#[test]
fn parses_dispatch_pause_resume_and_batches() {
    assert!(matches!(
        parse(&["dispatch", "--json"]),
        Command::Dispatch {
            out: Output { json: true }
        }
    ));
    match parse(&["pause", "--tenant", "d001", "--service", "hu"]) {
        Command::Pause { scope, out } => {
            let scope = PauseScope::from(scope);
            assert_eq!(scope.to_string(), "service hu of tenant d001");
            assert!(!out.json);
        }
        other => panic!("{other:?}"),
    }
    match parse(&["pause"]) {
        Command::Pause { scope, .. } => {
            assert_eq!(PauseScope::from(scope), PauseScope::default());
        }
        other => panic!("{other:?}"),
    }
    match parse(&["resume", "--service", "birthday", "--json"]) {
        Command::Resume { scope, out } => {
            assert_eq!(
                PauseScope::from(scope),
                PauseScope {
                    tenant: None,
                    service: Some("birthday".into())
                }
            );
            assert!(out.json);
        }
        other => panic!("{other:?}"),
    }
    match parse(&["batches", "--tenant", "d002"]) {
        Command::Batches { batches, .. } => {
            assert_eq!(batches.tenant.as_ref().map(TenantId::as_str), Some("d002"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&["batches"]),
        Command::Batches {
            batches: BatchOptions { tenant: None },
            ..
        }
    ));
    assert!(Cli::try_parse_from(["touchpoint", "pause", "--tenant", "Bad/Id"]).is_err());
}

#[test]
fn parses_costs_with_month_and_exclusive_outputs() {
    match parse(&["costs", "--tenant", "d001", "--month", "2026-12", "--csv"]) {
        Command::Costs {
            tenant,
            month,
            out,
            csv,
        } => {
            assert_eq!(tenant.as_ref().map(TenantId::as_str), Some("d001"));
            assert_eq!(month, Some(202612));
            assert!(csv && !out.json);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&["costs", "--json"]),
        Command::Costs {
            tenant: None,
            month: None,
            out: Output { json: true },
            csv: false
        }
    ));
    let err =
        Cli::try_parse_from(["touchpoint", "costs", "--json", "--csv"]).expect_err("conflict");
    assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    let err =
        Cli::try_parse_from(["touchpoint", "costs", "--month", "2026-13"]).expect_err("bad month");
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    assert!(
        err.to_string()
            .contains("month 13 is not between 01 and 12"),
        "{err}"
    );
}

#[test]
fn month_parsing() {
    assert_eq!(parse_month("2026-12"), Ok(202612));
    assert_eq!(parse_month("2027-01"), Ok(202701));
    for bad in [
        "",
        "2026",
        "202612",
        "2026-1",
        "26-12",
        "2026/12",
        "2026-12-01",
        " 2026-12",
        "2026-1a",
        "+026-12",
        "2026--1",
        "２０２６-12",
    ] {
        assert_eq!(
            parse_month(bad),
            Err(format!("{bad:?} is not a month (YYYY-MM, like 2026-12)")),
            "{bad:?}"
        );
    }
    assert_eq!(
        parse_month("2026-00"),
        Err("\"2026-00\": month 0 is not between 01 and 12".into())
    );
    assert_eq!(
        parse_month("2026-13"),
        Err("\"2026-13\": month 13 is not between 01 and 12".into())
    );
}

#[test]
fn parses_message_actions_and_calls() {
    match parse(&["message", "--tenant", "d001", "42", "--json"]) {
        Command::Message {
            tenant,
            id,
            out,
            content,
            html,
        } => {
            assert_eq!((tenant.as_str(), id, out.json), ("d001", 42, true));
            assert!(!content && !html);
        }
        other => panic!("{other:?}"),
    }
    match parse(&["message", "--tenant", "d001", "42", "--content", "--html"]) {
        Command::Message { content, html, .. } => assert!(content && html),
        other => panic!("{other:?}"),
    }
    assert!(Cli::try_parse_from(["touchpoint", "message", "42"]).is_err());
    assert!(Cli::try_parse_from(["touchpoint", "message", "--tenant", "d001", "x"]).is_err());

    for (name, want) in [
        ("hold", MessageAction::Hold),
        ("release", MessageAction::Release),
        ("cancel", MessageAction::Cancel),
        ("retry", MessageAction::Retry),
    ] {
        let (action, ids) = match parse(&[name, "--tenant", "d003", "7", "8", "9"]) {
            Command::Hold(ids) => (MessageAction::Hold, ids),
            Command::Release(ids) => (MessageAction::Release, ids),
            Command::Cancel(ids) => (MessageAction::Cancel, ids),
            Command::Retry(ids) => (MessageAction::Retry, ids),
            other => panic!("{other:?}"),
        };
        assert_eq!(action, want);
        assert_eq!(ids.tenant.as_str(), "d003");
        assert_eq!(ids.ids, [7, 8, 9]);
        // Ids are required, and so is the tenant.
        assert!(Cli::try_parse_from(["touchpoint", name, "--tenant", "d003"]).is_err());
        assert!(Cli::try_parse_from(["touchpoint", name, "7"]).is_err());
    }

    match parse(&["calls", "import", "outcomes.csv", "--json"]) {
        Command::Calls {
            command: CallsCommand::Import { file, out },
        } => {
            assert_eq!(file, PathBuf::from("outcomes.csv"));
            assert!(out.json);
        }
        other => panic!("{other:?}"),
    }
    assert!(Cli::try_parse_from(["touchpoint", "calls", "import"]).is_err());
    assert!(Cli::try_parse_from(["touchpoint", "calls"]).is_err());
}

#[tokio::test]
async fn readonly_refuses_every_new_change_before_connecting() {
    for args in [
        &["pause"][..],
        &["pause", "--tenant", "d001"],
        &["resume", "--service", "hu"],
        &["batches"],
        &["hold", "--tenant", "d001", "1"],
        &["release", "--tenant", "d001", "1"],
        &["cancel", "--tenant", "d001", "1", "2"],
        &["retry", "--tenant", "d001", "1"],
        // Refused before the file is even looked at.
        &["calls", "import", "/nonexistent/outcomes.csv"],
    ] {
        let err = run_inner(Some("/nonexistent.sock".into()), true, parse(args))
            .await
            .expect_err("refused");
        assert_eq!(err.code, EXIT_USAGE, "{args:?}");
        assert_eq!(
            err.message, "--readonly: this command changes data",
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn readonly_lets_reading_commands_through() {
    for args in [
        &["dispatch"][..],
        &["costs", "--month", "2026-12", "--csv"],
        &["message", "--tenant", "d001", "42"],
        &["plan", "--dry-run"],
    ] {
        let err = run_inner(Some("/nonexistent/t.sock".into()), true, parse(args))
            .await
            .expect_err("no daemon");
        assert_eq!(err.code, EXIT_UNREACHABLE, "{args:?}");
        assert!(
            err.message.contains("is touchpointd running?"),
            "{args:?}: {}",
            err.message
        );
    }
}

#[tokio::test]
async fn calls_import_refuses_a_large_or_missing_file_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("outcomes.csv");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(crate::client::MAX_CALL_OUTCOMES_BYTES + 1)
        .expect("sparse file");
    let err = run_inner(
        Some("/nonexistent/t.sock".into()),
        false,
        parse(&["calls", "import", big.to_str().expect("utf-8 path")]),
    )
    .await
    .expect_err("too large");
    assert_eq!(err.code, EXIT_FAILED);
    assert!(
        err.message.starts_with(&format!(
            "{} is {} bytes, more than the ",
            big.display(),
            crate::client::MAX_CALL_OUTCOMES_BYTES + 1
        )),
        "{}",
        err.message
    );

    let err = run_inner(
        Some("/nonexistent/t.sock".into()),
        false,
        parse(&["calls", "import", "/nonexistent/outcomes.csv"]),
    )
    .await
    .expect_err("missing");
    assert_eq!(err.code, EXIT_FAILED);
    assert!(
        err.message
            .starts_with("cannot read /nonexistent/outcomes.csv: "),
        "{}",
        err.message
    );
}

#[test]
fn parses_brand_material_subcommands() {
    match parse(&[
        "propose",
        "policies/templates/winter_check.toml",
        "--comment",
        "Räder",
    ]) {
        Command::Propose {
            file,
            comment,
            template,
            out,
        } => {
            assert_eq!(file, PathBuf::from("policies/templates/winter_check.toml"));
            assert_eq!(comment, "Räder");
            assert_eq!(template, None);
            assert!(!out.json);
        }
        other => panic!("{other:?}"),
    }
    match parse(&[
        "propose",
        "x.toml",
        "--comment",
        "c",
        "--template",
        "birthday",
        "--json",
    ]) {
        Command::Propose { template, out, .. } => {
            assert_eq!(template.as_deref(), Some("birthday"));
            assert!(out.json);
        }
        other => panic!("{other:?}"),
    }
    match parse(&[
        "rollback",
        "winter_check",
        "--to",
        "2",
        "--comment",
        "zurück",
    ]) {
        Command::Rollback {
            template,
            to,
            comment,
            ..
        } => assert_eq!(
            (template.as_str(), to, comment.as_str()),
            ("winter_check", 2, "zurück")
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&["approvals"]),
        Command::Approvals {
            all: false,
            out: Output { json: false }
        }
    ));
    assert!(matches!(
        parse(&["approvals", "--all", "--json"]),
        Command::Approvals {
            all: true,
            out: Output { json: true }
        }
    ));
    assert!(matches!(
        parse(&["approval", "12", "--json"]),
        Command::Approval {
            id: 12,
            out: Output { json: true }
        }
    ));
    match parse(&["preview", "12", "--tenant", "d001"]) {
        Command::Preview {
            id,
            tenant,
            customer,
            pdf,
            force,
            ..
        } => {
            assert_eq!((id, tenant.as_str()), (12, "d001"));
            assert_eq!((customer, pdf, force), (None, None, false));
        }
        other => panic!("{other:?}"),
    }
    match parse(&[
        "preview",
        "12",
        "--tenant",
        "d002",
        "--customer",
        "K-1001",
        "--pdf",
        "brief.pdf",
        "--force",
    ]) {
        Command::Preview {
            customer,
            pdf,
            force,
            ..
        } => {
            assert_eq!(customer.as_deref(), Some("K-1001"));
            assert_eq!(pdf, Some(PathBuf::from("brief.pdf")));
            assert!(force);
        }
        other => panic!("{other:?}"),
    }
    match parse(&["approve", "12"]) {
        Command::Approve { id, comment, .. } => assert_eq!((id, comment), (12, None)),
        other => panic!("{other:?}"),
    }
    match parse(&["approve", "12", "--comment", "passt"]) {
        Command::Approve { comment, .. } => assert_eq!(comment.as_deref(), Some("passt")),
        other => panic!("{other:?}"),
    }
    match parse(&["reject", "13", "--comment", "Impressum fehlt"]) {
        Command::Reject { id, comment, .. } => {
            assert_eq!((id, comment.as_str()), (13, "Impressum fehlt"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&["templates"]),
        Command::Templates { name: None, .. }
    ));
    match parse(&["templates", "birthday", "--json"]) {
        Command::Templates { name, out } => {
            assert_eq!(name.as_deref(), Some("birthday"));
            assert!(out.json);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn brand_material_arguments_are_checked_by_clap() {
    use clap::error::ErrorKind as K;
    let kind = |args: &[&str]| {
        let mut argv = vec!["touchpoint"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect_err("refused").kind()
    };
    // A comment is what the reviewer (or the author) reads: required, not empty.
    assert_eq!(kind(&["reject", "13"]), K::MissingRequiredArgument);
    assert_eq!(kind(&["reject", "13", "--comment", ""]), K::InvalidValue);
    assert_eq!(kind(&["propose", "x.toml"]), K::MissingRequiredArgument);
    assert_eq!(
        kind(&["propose", "x.toml", "--comment", ""]),
        K::InvalidValue
    );
    assert_eq!(
        kind(&["propose", "--comment", "c"]),
        K::MissingRequiredArgument
    );
    assert_eq!(
        kind(&["rollback", "winter_check", "--comment", "c"]),
        K::MissingRequiredArgument
    );
    assert_eq!(
        kind(&["rollback", "winter_check", "--to", "0", "--comment", "c"]),
        K::ValueValidation
    );
    assert_eq!(
        kind(&["rollback", "winter_check", "--to", "2"]),
        K::MissingRequiredArgument
    );
    assert_eq!(kind(&["approval", "x"]), K::ValueValidation);
    assert_eq!(kind(&["approve"]), K::MissingRequiredArgument);
    assert_eq!(kind(&["preview", "12"]), K::MissingRequiredArgument);
    assert_eq!(
        kind(&["preview", "12", "--tenant", "../x"]),
        K::ValueValidation
    );
    // --force only means something for --pdf.
    assert_eq!(
        kind(&["preview", "12", "--tenant", "d001", "--force"]),
        K::MissingRequiredArgument
    );
}

#[test]
fn the_template_name_defaults_to_the_file_stem() {
    for (file, name) in [
        ("winter_check.toml", "winter_check"),
        ("policies/templates/hu_reminder.toml", "hu_reminder"),
        ("/tmp/geburtstag-grüße.toml", "geburtstag-grüße"),
        ("service_due", "service_due"),
        ("quality.check.toml", "quality.check"),
    ] {
        assert_eq!(template_name(Path::new(file)).expect(file), name, "{file}");
    }
    for file in [".toml", "/", ".."] {
        let err = template_name(Path::new(file)).expect_err(file);
        assert_eq!(err.code, EXIT_USAGE, "{file}");
        assert!(err.message.ends_with("name it with --template"), "{file}");
    }
}

#[tokio::test]
async fn readonly_refuses_brand_material_changes_before_connecting() {
    for args in [
        // Refused before the file is even looked at.
        &[
            "propose",
            "/nonexistent/winter_check.toml",
            "--comment",
            "c",
        ][..],
        &["rollback", "winter_check", "--to", "1", "--comment", "c"],
        &["approve", "7"],
        &["approve", "7", "--comment", "ok"],
        &["reject", "7", "--comment", "nein"],
    ] {
        let err = run_inner(Some("/nonexistent.sock".into()), true, parse(args))
            .await
            .expect_err("refused");
        assert_eq!(err.code, EXIT_USAGE, "{args:?}");
        assert_eq!(
            err.message, "--readonly: this command changes data",
            "{args:?}"
        );
    }
    for args in [
        &["approvals", "--all"][..],
        &["approval", "7"],
        &["preview", "7", "--tenant", "d001"],
        &["templates", "winter_check"],
    ] {
        let err = run_inner(Some("/nonexistent/t.sock".into()), true, parse(args))
            .await
            .expect_err("no daemon");
        assert_eq!(err.code, EXIT_UNREACHABLE, "{args:?}");
        assert!(
            err.message.contains("is touchpointd running?"),
            "{args:?}: {}",
            err.message
        );
    }
}

#[tokio::test]
async fn propose_checks_the_file_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_inner(Some("/nonexistent/t.sock".into()), false, parse(&args)).await
    };
    let path = |name: &str| dir.path().join(name).display().to_string();

    let big = dir.path().join("winter_check.toml");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(crate::client::MAX_TEMPLATE_BYTES + 1))
        .expect("sparse file");
    let err = run(vec![
        "propose".into(),
        path("winter_check.toml"),
        "--comment".into(),
        "c".into(),
    ])
    .await
    .expect_err("too large");
    assert_eq!(err.code, EXIT_FAILED);
    assert!(
        err.message.starts_with(&format!(
            "{} is 1048577 bytes; a template may have at most",
            big.display()
        )),
        "{}",
        err.message
    );

    std::fs::write(
        dir.path().join("latin1.toml"),
        b"subject = \"Gr\xfc\xdfe\"\n",
    )
    .expect("write");
    let err = run(vec![
        "propose".into(),
        path("latin1.toml"),
        "--comment".into(),
        "c".into(),
    ])
    .await
    .expect_err("not UTF-8");
    assert_eq!(err.code, EXIT_FAILED);
    assert!(
        err.message
            .ends_with("line 1 is not UTF-8 text; save the file as UTF-8"),
        "{}",
        err.message
    );

    let err = run(vec![
        "propose".into(),
        path("missing.toml"),
        "--comment".into(),
        "c".into(),
    ])
    .await
    .expect_err("missing");
    assert_eq!(err.code, EXIT_FAILED);
    assert!(
        err.message
            .starts_with(&format!("cannot read {}: ", path("missing.toml"))),
        "{}",
        err.message
    );

    // A good file with a name that says nothing needs --template.
    std::fs::write(dir.path().join(".toml"), "x = 1\n").expect("write");
    let err = run(vec![
        "propose".into(),
        path(".toml"),
        "--comment".into(),
        "c".into(),
    ])
    .await
    .expect_err("no name");
    assert_eq!(err.code, EXIT_USAGE);
    // With a name, and a readable file, only the daemon is missing.
    let err = run(vec![
        "propose".into(),
        path(".toml"),
        "--comment".into(),
        "c".into(),
        "--template".into(),
        "birthday".into(),
    ])
    .await
    .expect_err("no daemon");
    assert!(
        err.message.contains("is touchpointd running?"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn preview_keeps_an_existing_pdf_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = dir.path().join("brief.pdf");
    std::fs::write(&pdf, b"old").expect("write");
    let pdf_arg = pdf.display().to_string();
    let err = run_inner(
        Some("/nonexistent/t.sock".into()),
        false,
        parse(&["preview", "7", "--tenant", "d001", "--pdf", &pdf_arg]),
    )
    .await
    .expect_err("exists");
    assert_eq!(err.code, EXIT_USAGE);
    assert_eq!(
        err.message,
        format!("{} exists; add --force to overwrite it", pdf.display())
    );
    let err = run_inner(
        Some("/nonexistent/t.sock".into()),
        false,
        parse(&[
            "preview", "7", "--tenant", "d001", "--pdf", &pdf_arg, "--force",
        ]),
    )
    .await
    .expect_err("no daemon");
    assert!(
        err.message.contains("is touchpointd running?"),
        "{}",
        err.message
    );

    // The write itself: a new file only, unless forced.
    let err = write_pdf(&pdf, b"%PDF-1.7 neu", false)
        .await
        .expect_err("exists");
    assert_eq!(err.code, EXIT_USAGE);
    assert_eq!(std::fs::read(&pdf).expect("read"), b"old");
    write_pdf(&pdf, b"%PDF-1.7 neu", true)
        .await
        .expect("forced");
    assert_eq!(std::fs::read(&pdf).expect("read"), b"%PDF-1.7 neu");
    let fresh = dir.path().join("neu.pdf");
    write_pdf(&fresh, b"%PDF-1.7", false)
        .await
        .expect("new file");
    assert_eq!(std::fs::read(&fresh).expect("read"), b"%PDF-1.7");
    let err = write_pdf(&dir.path().join("leer.pdf"), b"", false)
        .await
        .expect_err("no pdf");
    assert_eq!(err.code, EXIT_FAILED);
    assert!(!dir.path().join("leer.pdf").exists());
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    use std::ffi::OsStr;
    assert!(colour_wanted(true, None));
    assert!(colour_wanted(true, Some(OsStr::new(""))));
    assert!(!colour_wanted(true, Some(OsStr::new("1"))));
    assert!(!colour_wanted(false, None));
    assert!(!colour_wanted(false, Some(OsStr::new("1"))));
}

#[test]
fn invalid_proposals_show_the_daemons_lines_as_they_are() {
    use touchpoint_common::protocol::ErrorReply;
    let lines = "winter_check.toml:4: email.subject: unknown variable `kunde`\n\
                 winter_check.toml:19: letter: the imprint is missing";
    let f = proposal_refused(ClientError::Daemon(ErrorReply {
        kind: ErrorKind::Invalid,
        message: format!("{lines}\n"),
    }));
    assert_eq!(f.code, EXIT_FAILED);
    assert_eq!(f.message, format!("the proposal was refused:\n{lines}"));
    // Other refusals keep their usual text.
    let f = proposal_refused(ClientError::Daemon(ErrorReply {
        kind: ErrorKind::Forbidden,
        message: "read-only users cannot propose".into(),
    }));
    assert_eq!(f.code, EXIT_FAILED);
    assert_eq!(f.message, "forbidden: read-only users cannot propose");
    let f = proposal_refused(ClientError::Closed);
    assert_eq!(f.code, EXIT_UNREACHABLE);
}

/// Every command's `--json` answer as `print_json` writes it, from
/// fabricated answers, in one snapshot keyed by command: a change of shape
/// (a field renamed, a date back to a day number, money back to cents)
/// fails here. docs/json.md describes what is snapshotted.
#[test]
fn json_shapes_of_every_command() {
    use touchpoint_common::domain::{Channel, ImportStatus};
    use touchpoint_common::learning::{
        Arm, ArmFigures, Choice, LearnedService, LearnedState, Source,
    };
    use touchpoint_common::outbox::{
        Dropped, MessageStatus, Occasion, PlanChange, PlanReport, ServiceTotals, Step,
    };
    use touchpoint_common::policy::OccasionKind;
    use touchpoint_common::protocol::{
        ActionResult, BatchSummary, DispatchStatus, OutcomeReport, Pause, PlanResult, Proposal,
        ProposalStatus, TemplateHistory, TemplateVersion, TenantPlanChanges, TenantQueue,
        ThrottleStatus,
    };
    use touchpoint_common::report::stats::By;
    use touchpoint_common::report::{ResponseKind, ResponseLine, ResponseList, ResponseVerdict};
    use touchpoint_common::Date;

    use crate::fixtures::{self, tid, ts};

    fn v<T: Serialize + ?Sized>(t: &T) -> serde_json::Value {
        serde_json::to_value(t).expect("json")
    }
    let day = |d| Date::from_ymd(2025, 3, d).expect("date");
    let d001 = tid("d001");

    let mut status = fixtures::status();
    // The merger of a protocol change bumps it: not a change of shape.
    status.protocol_version = 0;
    let occasion = Occasion {
        key: "inspektion:WVWZZZ1KZAW000001:2024-04-01".into(),
        service: "inspektion".into(),
        kind: OccasionKind::ServiceDue,
        vin: Some("WVWZZZ1KZAW000001".into()),
        due: day(31),
        reason: "12 Monate nach dem Service am 2024-04-01".into(),
        value: 18_000,
    };
    let mut message = fixtures::message();
    message.occasions = vec![occasion.clone()];
    let proposal = Proposal {
        id: 7,
        template: "winter_check".into(),
        text: "[email]\nsubject = \"Winter\"\n".into(),
        base_version: 3,
        rollback_to: None,
        author: "anna".into(),
        author_uid: 1000,
        comment: "Winterreifen-Aktion".into(),
        created_at: ts(10),
        status: ProposalStatus::Approved {
            by: "jürgen".into(),
            at: ts(20),
            comment: "passt".into(),
            version: 4,
        },
    };
    let detail = ProposalDetail {
        proposal: proposal.clone(),
        diff: "--- winter_check v3 (in force)\n+++ winter_check proposal #7\n@@ -1 +1 @@\n-a\n+b\n"
            .into(),
        current_version: 4,
    };
    let pause = Pause {
        scope: PauseScope {
            tenant: Some(d001.clone()),
            service: None,
        },
        by: "anna".into(),
        at: ts(5),
    };
    let plan = PlanResult {
        reports: vec![PlanReport {
            tenant: "d001".into(),
            day: Some(day(14)),
            recipients: 1,
            occasions_found: 2,
            planned_count: 1,
            dropped_count: 1,
            planned: vec![message.clone()],
            dropped: vec![Dropped {
                recipient: "K-1002".into(),
                occasion: occasion.clone(),
                step: Step::Capping,
                reason: "zwei Kontakte in 30 Tagen".into(),
            }],
            totals: vec![ServiceTotals {
                service: "inspektion".into(),
                messages: 1,
                post: 1,
                cost: 95,
                dropped: 1,
                ..ServiceTotals::default()
            }],
            millis: 12,
            ..PlanReport::default()
        }],
        failed: vec![("d002".into(), "store unreadable".into())],
        changes: vec![TenantPlanChanges {
            tenant: "d001".into(),
            added: 1,
            cost_current: 0,
            cost_candidate: 95,
            changes: vec![PlanChange::Added(Box::new(message.clone()))],
            ..TenantPlanChanges::default()
        }],
    };
    let dispatch = DispatchStatus {
        enabled: true,
        transport: "spool /var/lib/touchpoint/mail".into(),
        paused: vec![pause.clone()],
        throttles: vec![ThrottleStatus {
            name: "global".into(),
            in_flight: 2,
            concurrency: 8,
            used: 40,
            limit: 600,
            per: "minute".into(),
            saturation: 25,
        }],
        queues: vec![TenantQueue {
            tenant: d001.clone(),
            email: 3,
            post: 1,
            phone: 0,
            in_flight: 2,
            sent_today: 12,
            error: None,
        }],
        relay_down_until: Some(ts(15)),
        daemon_wide: true,
        ..DispatchStatus::default()
    };
    let actions: Vec<ActionOutcome<'_>> = [
        ActionResult {
            id: 42,
            outcome: Ok(MessageStatus::Held),
        },
        ActionResult {
            id: 43,
            outcome: Err("message 43 is sent: it cannot be held".into()),
        },
    ]
    .iter()
    .map(|r| ActionOutcome {
        tenant: Some(&d001),
        id: r.id,
        ok: r.outcome.is_ok(),
        reason: r.outcome.clone().err(),
    })
    .collect();
    let approve = [ActionOutcome {
        tenant: None,
        id: 7,
        ok: true,
        reason: None,
    }];
    let templates = vec![TemplateHistory {
        name: "winter_check".into(),
        in_force: 4,
        versions: vec![TemplateVersion {
            version: 4,
            fingerprint: 0x1f2e_3d4c_5b6a_7988,
            text: "[email]\n".into(),
            author: "anna".into(),
            approved_by: "jürgen".into(),
            at: ts(20),
            comment: "Winterreifen-Aktion".into(),
            proposal: Some(7),
        }],
    }];
    let customer = fixtures::customer_detail();
    let responses = ResponseList {
        lines: vec![ResponseLine {
            recipient: "K-1001".into(),
            vin: "WVWZZZ1KZAW000001".into(),
            kind: ResponseKind::ServiceVisit,
            date: day(28),
            value: Some(touchpoint_common::money::Money(24_990)),
            source: "werkstatt.csv:215".into(),
            verdict: ResponseVerdict::Message {
                id: 42,
                sent: day(17),
            },
        }],
        matched: 1,
        to_messages: 1,
        to_control: 0,
        organic: 0,
    };
    let arm = |arm| ArmFigures {
        arm,
        passes: true,
        dealers: 6,
        sent: 1_200,
        responses: 96,
        control: 60,
        control_responses: 3,
        alpha: 97.0,
        beta: 1_105.0,
        baseline: 0.05,
        objective: 0.5,
    };
    let learning = LearnedState {
        version: 3,
        services: vec![LearnedService {
            service: "service_due".into(),
            channel: Channel::Email,
            policy_lead: 21,
            lead: Choice {
                value: 28,
                source: Source::Learned,
                arms: vec![arm(Arm::Lead(28))],
                version: 3,
            },
            slot: Choice {
                value: Some((0, 8)),
                source: Source::Policy,
                arms: vec![arm(Arm::Slot(0, 8))],
                version: 1,
            },
            dealers: 6,
            min_dealers: 5,
            sent: 1_200,
            explore_percent: 10,
            incremental: Some(0.03),
            value_cents: 3_800,
            frozen: false,
        }],
        computed_at: Some(ts(30)),
        ..LearnedState::default()
    };
    let import = [FileOutcome {
        file: "kunden.csv".into(),
        report: Some(&fixtures::import(
            1,
            "d001",
            "kunden.csv",
            ImportStatus::Committed,
            0,
        )),
        error: None,
    }];

    let shapes: Vec<(&str, serde_json::Value)> = vec![
        ("approval, propose, rollback", v(&detail)),
        ("approvals", v(&[proposal])),
        ("approve, reject, undo-merge", v(&approve)),
        ("audit", v(&fixtures::audit())),
        (
            "calls import",
            v(&OutcomeReport {
                applied: 3,
                unchanged: 1,
                errors: vec!["anrufe.csv:4: outcome: `vielleicht` is not one of booked, declined, unreachable".into()],
            }),
        ),
        ("costs", v(&fixtures::ledger())),
        ("customer", v(&customer)),
        ("dispatch", v(&dispatch)),
        (
            "erase, reinstate, object, erase-tenant",
            v(&touchpoint_common::protocol::RightsDone {
                tenant: d001.clone(),
                pseudonym: Some("erased-0123456789abcdef".into()),
                done: vec![("customer numbers erased".into(), 1), ("store rewritten".into(), 1)],
            }),
        ),
        (
            "export-customer",
            v(&touchpoint_common::protocol::CustomerExport {
                tenant: d001.clone(),
                exported_at: ts(90),
                customer: customer.customer.clone(),
                numbers: vec![customer.customer.customer_no.clone()],
                records: vec![customer.customer.clone()],
                vehicles: customer
                    .vehicles
                    .iter()
                    .map(|v| touchpoint_common::protocol::ExportVehicle {
                        vehicle: v.vehicle.clone(),
                        visits: v.visits.clone(),
                    })
                    .collect(),
                consents: customer.consents.clone(),
                responses: customer.responses.clone(),
                merges: customer.merges.clone(),
                journey: customer.journey.clone(),
                objection: Some(touchpoint_common::domain::Objection {
                    at: ts(30),
                    by: "ops".into(),
                    reason: "phoned the dealer".into(),
                }),
                messages: vec![touchpoint_common::protocol::ExportMessage {
                    message: message.clone(),
                    credited: None,
                }],
            }),
        ),
        (
            "batches",
            v(&[BatchSummary {
                tenant: d001.clone(),
                kind: "letters".into(),
                files: vec!["d001-2025-03-14-letters.pdf".into()],
                messages: 12,
                cost: 1_140,
            }]),
        ),
        ("hold, release, cancel, retry", v(&actions)),
        ("import", v(&import)),
        ("learning", v(&learning)),
        ("merges", v(&[fixtures::merge(3, "K-1001", "K-1001a", false)])),
        ("message", v(&message)),
        ("overview", v(&fixtures::overview())),
        ("pause, resume", v(&[pause])),
        ("plan", v(&plan)),
        (
            "preview",
            v(&PreviewJson {
                proposal: 7,
                tenant: &d001,
                customer: "K-1001",
                subject: "Ihr Golf braucht Pflege",
                text: "Guten Tag Herr Köhler, …",
                html: "<p>Guten Tag Herr Köhler, …</p>",
                letter: "Guten Tag Herr Köhler, …",
                pdf_bytes: 18_432,
                pdf_file: Some("vorschau.pdf".into()),
            }),
        ),
        ("queue", v(&fixtures::queue_page(0, 2))),
        ("report", v(&format::report_json(&fixtures::report(By::Service, false)))),
        ("responses", v(&responses)),
        ("status", v(&status)),
        ("templates", v(&templates)),
        ("tenant", v(&fixtures::detail())),
        ("tenants", v(&fixtures::tenants()[..2])),
    ];
    let all: serde_json::Map<String, serde_json::Value> = shapes
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let text = serde_json::to_string_pretty(&all).expect("json");
    // Nothing of the old forms is left: no {"Ok": …}, no day numbers.
    assert!(!text.contains("\"Ok\""), "{text}");
    insta::assert_snapshot!(text);
}
