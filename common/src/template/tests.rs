use super::*;

const GOOD: &str = "# comment\nsubject = 'Hallo {{ customer.last_name }}'\ntext = '''\nLine 1\n{{ dealer.name }}\n'''\nhtml = '''<p>{{ slots.signature }}</p>'''\nletter = \"{{ today }}\\n{% for o in occasions %}{{ o.title }}{% endfor %}\"\n";

#[test]
fn parses_all_parts_and_fingerprints_the_file() {
    let t = Template::parse("x", "templates/x.toml", GOOD).unwrap();
    assert_eq!(t.name, "x");
    assert_eq!(t.subject, "Hallo {{ customer.last_name }}");
    assert_eq!(t.text, "Line 1\n{{ dealer.name }}\n");
    assert_eq!(t.html, "<p>{{ slots.signature }}</p>");
    assert_eq!(t.part(Part::Letter), t.letter);
    assert_eq!(t.version, fnv1a(GOOD.as_bytes()));
    let again = Template::parse("x", "templates/x.toml", GOOD).unwrap();
    assert_eq!(t.version, again.version);
    let other =
        Template::parse("x", "templates/x.toml", &GOOD.replace("Line 1", "Zeile 1")).unwrap();
    assert_ne!(t.version, other.version);
    // A known value, so the version is the same on every platform.
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn syntax_errors_point_at_the_line_in_the_file() {
    // text starts on line 4 (after the trimmed newline); the error is on its line 3.
    let bad = GOOD.replace(
        "{{ dealer.name }}\n'''",
        "{{ dealer.name }}\n{% if x %}\n'''",
    );
    let errs = Template::parse("x", "templates/x.toml", &bad).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].to_string(),
        "templates/x.toml:6: text: syntax error: unexpected end of input, expected end of block"
    );
    // A string whose text starts on the key's line.
    let bad = GOOD.replace(
        "'''<p>{{ slots.signature }}",
        "'''<p>\n\n{{ slots.signature }",
    );
    let errs = Template::parse("x", "templates/x.toml", &bad).unwrap_err();
    assert_eq!(errs[0].line, Some(9), "{errs:?}");
    assert_eq!(errs[0].key, "html");
    // A one-line string: the key's line, whatever the escapes say.
    let bad = GOOD.replace("{% endfor %}", "");
    let errs = Template::parse("x", "templates/x.toml", &bad).unwrap_err();
    assert_eq!(errs[0].line, Some(8), "{errs:?}");
    assert_eq!(errs[0].key, "letter");
}

#[test]
fn every_broken_part_is_reported() {
    let bad = GOOD
        .replace("'Hallo {{ customer.last_name }}'", "'{{ }}'")
        .replace("{% endfor %}", "");
    let errs = Template::parse("x", "templates/x.toml", &bad).unwrap_err();
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["subject", "letter"], "{errs:?}");
    assert_eq!(errs[0].line, Some(2));
}

#[test]
fn missing_and_unknown_keys_are_errors() {
    let errs = Template::parse(
        "x",
        "templates/x.toml",
        "subject = ''\ntext = ''\nhtml = ''\n",
    )
    .unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "templates/x.toml:1: missing key `letter`"
    );
    let errs = Template::parse("x", "t.toml", &format!("{GOOD}footer = ''\n")).unwrap_err();
    assert_eq!(errs[0].line, Some(9), "{errs:?}");
    assert!(
        errs[0].message.starts_with("unknown key `footer`"),
        "{errs:?}"
    );
}

#[test]
fn unknown_variables_are_errors_and_known_ones_are_not() {
    let bad = GOOD.replace("dealer.name", "dealer.fax");
    let errs = Template::parse("x", "templates/x.toml", &bad).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].line, Some(5));
    assert!(
        errs[0].message.starts_with(
            "unknown variable `dealer.fax` (a template has: brand.name, customer.salutation_line"
        ),
        "{errs:?}"
    );
    let bad = GOOD.replace("customer.last_name", "custmer.last_name");
    let errs = Template::parse("x", "templates/x.toml", &bad).unwrap_err();
    assert_eq!(errs[0].key, "subject");
    assert!(errs[0].message.contains("`custmer.last_name`"), "{errs:?}");

    for ok in [
        "{{ slots.anything }}{{ brand.name }}{{ occasions[0].vehicle.model }}",
        "{% for o in occasions %}{{ loop.index }}. {{ o.vehicle.vin }}{% endfor %}",
        "{% set n = occasions|length %}{{ n }}{% for i in range(n) %}{{ i }}{% endfor %}",
        "{{ unsubscribe_url }} {{ today }} {{ customer.first_name }} {{ dealer.email }}",
    ] {
        let file = format!("subject = ''\ntext = '{ok}'\nhtml = ''\nletter = ''\n");
        Template::parse("x", "x.toml", &file).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
}

#[test]
fn shipped_templates_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/templates");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let t = Template::parse(&stem, &path.display().to_string(), &text)
            .unwrap_or_else(|e| panic!("{e:?}"));
        for part in Part::ALL {
            assert!(!t.part(part).trim().is_empty(), "{stem}: {part}");
        }
        n += 1;
    }
    assert!(n >= 5);
}

#[test]
fn only_the_html_part_escapes() {
    let mut env = environment();
    env.add_template_owned("t/html", "{{ v }}").unwrap();
    env.add_template_owned("t/text", "{{ v }}").unwrap();
    let ctx = minijinja::context! { v => "<b>&" };
    assert_eq!(
        env.get_template("t/html").unwrap().render(&ctx).unwrap(),
        "&lt;b&gt;&amp;"
    );
    assert_eq!(
        env.get_template("t/text").unwrap().render(&ctx).unwrap(),
        "<b>&"
    );
}
