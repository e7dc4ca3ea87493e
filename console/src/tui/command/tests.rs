use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyModifiers};

use super::*;

fn ctx(role: Role) -> Context {
    Context {
        role: Some(role),
        scope: Some(Scope::All),
        readonly: false,
        tenants: vec!["d001".into(), "d002".into(), "e100".into()],
        services: vec![
            "birthday".into(),
            "hu_reminder".into(),
            "service_due".into(),
        ],
    }
}

fn tid(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant id")
}

#[test]
fn words_split_like_a_shell() {
    assert_eq!(
        split_words(r#"import --tenant d001 "my file.csv" 'it''s' a\ b"#).expect("split"),
        ["import", "--tenant", "d001", "my file.csv", "its", "a b"]
    );
    assert_eq!(split_words("  ").expect("split"), Vec::<String>::new());
    assert_eq!(split_words(r#""""#).expect("split"), [""]);
    assert!(split_words("import 'open").is_err());
    assert!(split_words("pause \\").is_err());
}

#[test]
fn daemon_commands_take_the_subcommands_arguments() {
    let c = ctx(Role::Operator);
    assert_eq!(
        parse("pause", &c),
        Ok(Parsed::Run(Run::Pause(PauseScope::default())))
    );
    assert_eq!(
        parse("resume --tenant d001 --service hu_reminder", &c),
        Ok(Parsed::Run(Run::Resume(PauseScope {
            tenant: Some(tid("d001")),
            service: Some("hu_reminder".into()),
        })))
    );
    assert_eq!(
        parse("plan --dry-run --tenant=d002 --day 2026-12-07", &c),
        Ok(Parsed::Run(Run::Plan {
            tenant: Some(tid("d002")),
            day: Some(touchpoint_common::Date::from_ymd(2026, 12, 7).expect("day")),
            dry_run: true,
            policies: None,
            show: 0,
        }))
    );
    assert_eq!(
        parse("batches", &c),
        Ok(Parsed::Run(Run::Batches { tenant: None }))
    );
    assert_eq!(
        parse("import --tenant d001 a.csv 'b c.csv'", &c),
        Ok(Parsed::Run(Run::Import {
            tenant: tid("d001"),
            files: vec![PathBuf::from("a.csv"), PathBuf::from("b c.csv")],
        }))
    );
    assert_eq!(parse("queue", &c), Ok(Parsed::View(View::Queue)));
    assert_eq!(parse("q", &c), Ok(Parsed::Quit));
    assert_eq!(parse("help", &c), Ok(Parsed::Help));
}

#[test]
fn bad_lines_say_what_is_wrong_on_one_line() {
    let c = ctx(Role::Operator);
    let e = parse("pase", &c).expect_err("unknown");
    assert_eq!(
        e,
        "no command `pase` (did you mean `pause`?) · :help lists them"
    );
    let e = parse("import a.csv", &c).expect_err("no tenant");
    assert!(e.contains("--tenant"), "{e}");
    assert!(!e.contains('\n') && !e.contains("Usage"), "{e}");
    let e = parse("pause --tenat d001", &c).expect_err("typo");
    assert!(e.contains("'--tenat'") && e.contains("'--tenant'"), "{e}");
    let e = parse("plan --day 07.12.2026", &c).expect_err("bad day");
    assert!(e.contains("07.12.2026"), "{e}");
    let e = parse("pause --tenant ../x", &c).expect_err("bad id");
    assert!(e.contains("../x"), "{e}");
    assert_eq!(
        parse("queue now", &c),
        Err(":queue takes no arguments".into())
    );
    // Did-you-mean names only what the role may run.
    let e = parse("pase", &ctx(Role::ReadOnly)).expect_err("unknown");
    assert!(!e.contains("`pause`"), "{e}");
}

#[test]
fn the_role_the_scope_and_readonly_are_checked_before_sending() {
    let pause = Run::Pause(PauseScope::default());
    let commit = Run::Plan {
        tenant: None,
        day: None,
        dry_run: false,
        policies: None,
        show: 0,
    };
    let dry = dry(&commit);
    assert_eq!(check(&pause, &ctx(Role::Operator)), Ok(()));
    assert_eq!(check(&commit, &ctx(Role::Admin)), Ok(()));
    assert_eq!(
        check(&pause, &ctx(Role::ReadOnly)),
        Err("your role (read-only) may not pause".into())
    );
    assert_eq!(
        check(&commit, &ctx(Role::Reviewer)),
        Err("your role (reviewer) may not plan without --dry-run \
             (:plan --dry-run shows what would be planned)"
            .into())
    );
    assert_eq!(check(&dry, &ctx(Role::ReadOnly)), Ok(()));
    assert!(check(&dry, &ctx(Role::Brand)).is_err());
    let readonly = Context {
        readonly: true,
        ..ctx(Role::Operator)
    };
    assert!(check(&pause, &readonly).is_err_and(|e| e.contains("--readonly")));
    assert_eq!(check(&dry, &readonly), Ok(()));
    let scoped = Context {
        scope: Some(Scope::Tenants(vec![tid("d001")])),
        ..ctx(Role::Operator)
    };
    let import = |t: &str| Run::Import {
        tenant: tid(t),
        files: vec![PathBuf::from("a.csv")],
    };
    assert_eq!(check(&import("d001"), &scoped), Ok(()));
    assert_eq!(
        check(&import("d002"), &scoped),
        Err("tenant d002 is not in your scope".into())
    );
    let nobody = Context::default();
    assert!(check(&dry, &nobody).is_err());
    // Only what changes data asks first.
    assert!(writes(&pause) && writes(&commit) && !writes(&dry));
    let candidate = Run::Plan {
        tenant: None,
        day: None,
        dry_run: false,
        policies: Some(PathBuf::from("policies")),
        show: 0,
    };
    assert!(!writes(&candidate));
    assert_eq!(check(&candidate, &ctx(Role::ReadOnly)), Ok(()));
}

fn tab(text: &str, c: &Context) -> Completion {
    complete(text, text.chars().count(), c)
}

#[test]
fn tab_completes_commands_flags_and_known_values() {
    let c = ctx(Role::Operator);
    let done = tab("pa", &c);
    assert_eq!((done.text.as_str(), done.cursor), ("pause ", 6));
    assert!(done.candidates.is_empty());
    // Two commands start with `p`: the hint names them.
    let done = tab("p", &c);
    assert_eq!(done.text, "p");
    assert_eq!(done.candidates, ["pause", "plan", "policies"]);
    // Flags of the command, those not given yet.
    let done = tab("pause --tenant d001 ", &c);
    assert_eq!(done.text, "pause --tenant d001 --service ");
    let done = tab("plan --d", &c);
    assert_eq!(done.candidates, ["--day", "--dry-run"]);
    assert_eq!(done.text, "plan --d");
    let done = tab("plan --dr", &c);
    assert_eq!(done.text, "plan --dry-run ");
    // Values the console knows.
    let done = tab("import --tenant d", &c);
    assert_eq!(done.text, "import --tenant d00");
    assert_eq!(done.candidates, ["d001", "d002"]);
    let done = tab("pause --service h", &c);
    assert_eq!(done.text, "pause --service hu_reminder ");
    // Nothing to offer for a value the console cannot know.
    let done = tab("plan --day ", &c);
    assert_eq!(
        (done.text.as_str(), done.candidates.len()),
        ("plan --day ", 0)
    );
    // In the middle of a line: the word before the cursor, the rest kept.
    let done = complete("pa --tenant d001", 2, &c);
    assert_eq!(
        (done.text.as_str(), done.cursor),
        ("pause  --tenant d001", 6)
    );
}

#[test]
fn completion_offers_only_what_the_role_may_run() {
    let names = |c: &Context| tab("", c).candidates;
    let operator = names(&ctx(Role::Operator));
    for n in [
        "pause", "resume", "plan", "batches", "import", "queue", "quit",
    ] {
        assert!(operator.contains(&n.to_string()), "{operator:?}");
    }
    let viewer = names(&ctx(Role::ReadOnly));
    assert!(viewer.contains(&"plan".to_string()), "{viewer:?}");
    for n in ["pause", "resume", "batches", "import"] {
        assert!(!viewer.contains(&n.to_string()), "{viewer:?}");
    }
    let readonly = Context {
        readonly: true,
        ..ctx(Role::Admin)
    };
    assert!(!names(&readonly).contains(&"pause".to_string()));
    assert_eq!(tab("pau", &ctx(Role::ReadOnly)).text, "pau");
    // A command the role may not run gets no flags either.
    assert!(tab("pause --", &ctx(Role::ReadOnly)).candidates.is_empty());
    let brand = names(&ctx(Role::Brand));
    assert!(!brand.contains(&"plan".to_string()), "{brand:?}");
    assert!(help(&ctx(Role::Operator)).contains(":import --tenant T FILE…"));
    assert!(!help(&ctx(Role::ReadOnly)).contains(":import"));
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn typed(line: &mut CommandLine, text: &str) {
    for c in text.chars() {
        line.edit(&key(KeyCode::Char(c)));
    }
}

#[test]
fn the_line_edits_and_recalls_a_bounded_history() {
    let mut line = CommandLine::default();
    line.open();
    typed(&mut line, "pause");
    line.edit(&key(KeyCode::Left));
    line.edit(&key(KeyCode::Left));
    line.edit(&key(KeyCode::Backspace));
    assert_eq!((line.text.as_str(), line.cursor), ("pase", 2));
    line.edit(&KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    assert_eq!((line.text.as_str(), line.cursor), ("", 0));
    typed(&mut line, "pause");
    assert_eq!(line.take(), "pause");
    assert!(!line.open);
    line.open();
    typed(&mut line, "plan --dry-run");
    line.take();
    line.open();
    typed(&mut line, "bat");
    line.recall(true);
    assert_eq!(line.text, "plan --dry-run");
    line.recall(true);
    assert_eq!(line.text, "pause");
    line.recall(true);
    assert_eq!(line.text, "pause", "stays at the oldest");
    line.recall(false);
    line.recall(false);
    assert_eq!(line.text, "bat", "down past the newest: what was typed");
    // The same line twice is kept once; the history is bounded.
    for n in 0..HISTORY + 10 {
        line.open();
        typed(&mut line, &format!("queue{n}"));
        line.take();
        line.open();
        typed(&mut line, &format!("queue{n}"));
        line.take();
    }
    assert_eq!(line.history.len(), HISTORY);
    assert_eq!(line.history.back().map(String::as_str), Some("queue59"));
    // A paste longer than the bound is not taken whole.
    line.open();
    typed(&mut line, &"x".repeat(MAX_LINE + 5));
    assert_eq!(line.text.chars().count(), MAX_LINE);
}

#[test]
fn customer_opens_a_stored_customer_for_any_role_and_completes_its_tenant() {
    let c = ctx(Role::ReadOnly);
    assert_eq!(
        parse("customer --tenant d001 'K 10042'", &c),
        Ok(Parsed::Customer {
            tenant: tid("d001"),
            no: "K 10042".into(),
        })
    );
    let missing = parse("customer K1", &c).expect_err("no tenant");
    assert!(missing.contains("--tenant"), "{missing}");
    assert!(parse("customer --tenant d001", &c).is_err());
    assert_eq!(tab("cust", &c).text, "customer ");
    assert_eq!(tab("customer --t", &c).text, "customer --tenant ");
    assert_eq!(
        tab("customer --tenant e", &c).text,
        "customer --tenant e100 "
    );
}
