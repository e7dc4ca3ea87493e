#![allow(clippy::unwrap_used)]

use super::*;
use touchpoint_common::postage::DiscountTier;

fn tenant() -> TenantId {
    TenantId::new("d001").unwrap()
}

fn day() -> Date {
    Date::from_ymd(2026, 11, 23).unwrap()
}

fn letter(message: u64, name: &str, recipient: &str, postcode: &str, body: &str) -> Letter {
    Letter {
        message,
        recipient: recipient.into(),
        address: vec![
            name.into(),
            "Schloßallee 7".into(),
            format!("{postcode} Wolfsburg"),
        ],
        postcode: postcode.into(),
        sender_line: "Autohaus Jäger · Hauptstr. 1 · 38440 Wolfsburg".into(),
        info: vec!["Autohaus Jäger".into(), "Telefon 05361 4711".into()],
        logo: Some("JÄGER".into()),
        date: "23.11.2026".into(),
        body: body.into(),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn manifest_rows(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn long_body() -> String {
    let para = "Mit der Inspektion nach Herstellervorgabe bleiben Ihre Garantie- und \
                    Kulanzansprüche erhalten, und Sie fahren sicher und wirtschaftlich.";
    (0..30).map(|_| format!("{para}\n\n")).collect()
}

/// Names and customer numbers come from dealers' exports: in the
/// manifest they are text a spreadsheet shows, not formulas it runs.
#[test]
fn the_manifest_holds_formulas_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let report = write_batch(
        dir.path(),
        BatchRequest {
            tenant: &tenant(),
            day: day(),
            seq: 1,
            letters: vec![
                letter(1, "=HYPERLINK(\"http://x\";\"y\")", "@K1", "38440", "Hallo"),
                letter(2, " \t-1+cmd|' /C calc'!A0", "K2", "38441", "Hallo"),
            ],
            postage: &Postage::default(),
        },
    )
    .unwrap();
    let rows = manifest_rows(&report.manifest);
    assert_eq!(
        (&rows[0][2..4], &rows[1][2..4]),
        (
            &[
                "'@K1".to_string(),
                "'=HYPERLINK(\"http://x\";\"y\")".to_string()
            ][..],
            &["K2".to_string(), "'-1+cmd|' /C calc'!A0".to_string()][..]
        )
    );
    let text = std::fs::read_to_string(&report.manifest).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("1,1,\"'@K1\",\"'=HYPERLINK("),
        "{text}"
    );
}

#[test]
fn writes_sorted_batch_with_manifest_and_umlauts() {
    let dir = tempfile::tempdir().unwrap();
    let postage = Postage::default();
    let letters = vec![
        letter(1, "Jörg Weiß", "K3", "80331", "Grüß Gott, Herr Weiß!"),
        letter(2, "Änne Müller", "K2", "38440", "Guten Tag, Frau Müller."),
        letter(3, "Ute Öz", "K9", "A-1010", "Servus"),
        letter(4, "Bo Bär", "K1", "38440", &long_body()),
        letter(5, "Cem Çelik", "K5", "38100", "Hallo"),
    ];
    let report = write_batch(
        dir.path(),
        BatchRequest {
            tenant: &tenant(),
            day: day(),
            seq: 1,
            letters,
            postage: &postage,
        },
    )
    .unwrap();
    assert_eq!(report.pdf, dir.path().join("d001/d001-2026-11-23-01.pdf"));
    assert_eq!(
        report.manifest,
        dir.path().join("d001/d001-2026-11-23-01.csv")
    );
    assert!(batch_complete(dir.path(), &tenant(), day(), 1));
    assert!(!batch_complete(dir.path(), &tenant(), day(), 2));

    // Region 38 (postcode 38100, then 38440 by customer number), region 80, no region.
    let order: Vec<u64> = report.lines.iter().map(|l| l.message).collect();
    assert_eq!(order, [5, 4, 2, 1, 3]);
    let seqs: Vec<u32> = report.lines.iter().map(|l| l.sequence).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let long = &report.lines[1];
    assert!(long.pages >= 2, "{long:?}");
    assert_eq!(long.grams, 5 + 5 * long.pages);
    assert_eq!(report.lines[0].pages, 1);
    assert_eq!(report.lines[0].weight_class, "Standardbrief");
    assert_eq!(report.lines[0].postage, Money(95));
    assert_eq!(
        report.total.cents(),
        report.lines.iter().map(|l| l.postage.cents()).sum::<i64>()
    );

    let pdf = std::fs::read(&report.pdf).unwrap();
    for needle in [
        &b"(\xc4nne M\xfcller)"[..],
        b"(J\xf6rg Wei\xdf)",
        b"Gr\xfc\xdf Gott, Herr Wei\xdf!",
        b"Schlo\xdfallee 7",
        b"Autohaus J\xe4ger \xb7 Hauptstr. 1",
    ] {
        assert!(
            contains(&pdf, needle),
            "{}",
            String::from_utf8_lossy(needle)
        );
    }
    // Print order in the PDF follows the manifest.
    let pos = |n: &[u8]| pdf.windows(n.len()).position(|w| w == n).unwrap();
    assert!(pos(b"(Cem \xc7elik)") < pos(b"(Bo B\xe4r)"));
    assert!(pos(b"(Bo B\xe4r)") < pos(b"(\xc4nne M\xfcller)"));
    assert!(pos(b"(J\xf6rg Wei\xdf)") < pos(b"(Ute \xd6z)"));

    let rows = manifest_rows(&report.manifest);
    let header = csv::Reader::from_path(&report.manifest)
        .unwrap()
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(
        header,
        [
            "sequence",
            "message",
            "recipient",
            "name",
            "postcode",
            "region",
            "pages",
            "grams",
            "weight_class",
            "discount",
            "postage_cents"
        ]
    );
    assert_eq!(
        rows[2],
        [
            "3",
            "2",
            "K2",
            "Änne Müller",
            "38440",
            "38",
            "1",
            "10",
            "Standardbrief",
            "",
            "95"
        ]
    );
    assert_eq!(rows[4][5], "");
    assert_eq!(rows[4][3], "Ute Öz");
    assert_eq!(rows.len(), 5);
}

#[test]
fn discount_tier_goes_by_the_letters_of_each_region() {
    let dir = tempfile::tempdir().unwrap();
    let postage = Postage {
        discounts: vec![
            DiscountTier {
                name: "ab 3".into(),
                min_letters: 3,
                percent: 10,
            },
            DiscountTier {
                name: "ab 5".into(),
                min_letters: 5,
                percent: 20,
            },
        ],
        ..Postage::default()
    };
    let mut letters = Vec::new();
    let mut id = 0;
    for (postcode, n) in [("10115", 5), ("20095", 3), ("30159", 2)] {
        for _ in 0..n {
            id += 1;
            letters.push(letter(id, "X", &format!("K{id:03}"), postcode, "Hallo"));
        }
    }
    let report = write_batch(
        dir.path(),
        BatchRequest {
            tenant: &tenant(),
            day: day(),
            seq: 3,
            letters,
            postage: &postage,
        },
    )
    .unwrap();
    let by_region: Vec<(Option<&str>, Money)> = report
        .lines
        .iter()
        .map(|l| (l.discount.as_deref(), l.postage))
        .collect();
    let mut expect = vec![(Some("ab 5"), Money(76)); 5];
    expect.extend(vec![(Some("ab 3"), Money(86)); 3]);
    expect.extend(vec![(None, Money(95)); 2]);
    assert_eq!(by_region, expect);
    assert_eq!(report.total, Money(5 * 76 + 3 * 86 + 2 * 95));
    let rows = manifest_rows(&report.manifest);
    assert_eq!(rows[0][9], "ab 5");
    assert_eq!(rows[0][10], "76");
    assert_eq!(rows[9][9], "");
}

#[test]
fn heavy_letters_and_empty_batches_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let postage = Postage {
        classes: vec![touchpoint_common::postage::WeightClass {
            name: "Standardbrief".into(),
            max_grams: 10,
            price: Money(95),
        }],
        ..Postage::default()
    };
    let t = tenant();
    let req = |letters| BatchRequest {
        tenant: &t,
        day: day(),
        seq: 1,
        letters,
        postage: &postage,
    };
    let long = letter(7, "X", "K1", "10115", &long_body());
    match write_batch(dir.path(), req(vec![long])) {
        Err(LetterError::TooHeavy { message: 7, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        write_batch(dir.path(), req(Vec::new())),
        Err(LetterError::Empty(_))
    ));
    assert!(!dir.path().join("d001").exists());
}

/// A hidden file in a tenant's folder: one of the daemon's temporary files.
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn crash_leftovers_are_replaced_and_complete_batches_kept() {
    let dir = tempfile::tempdir().unwrap();
    let postage = Postage::default();
    let (pdf_path, manifest_path) = batch_paths(dir.path(), &tenant(), day(), 1);
    // A crash while writing: a PDF renamed without its manifest.
    std::fs::create_dir_all(pdf_path.parent().unwrap()).unwrap();
    std::fs::write(&pdf_path, b"%PDF-1.4 old").unwrap();
    assert!(!batch_complete(dir.path(), &tenant(), day(), 1));

    let t = tenant();
    let req = || BatchRequest {
        tenant: &t,
        day: day(),
        seq: 1,
        letters: vec![letter(1, "Ärmel", "K1", "10115", "Hallo")],
        postage: &postage,
    };
    let report = write_batch(dir.path(), req()).unwrap();
    assert!(batch_complete(dir.path(), &tenant(), day(), 1));
    let pdf = std::fs::read(&report.pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF-1.4\n") && contains(&pdf, b"(\xc4rmel)"));
    let names: Vec<String> = std::fs::read_dir(pdf_path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["d001-2026-11-23-01.csv", "d001-2026-11-23-01.pdf"]);

    // A complete batch is never replaced.
    let before = std::fs::read(&manifest_path).unwrap();
    assert!(matches!(
        write_batch(dir.path(), req()),
        Err(LetterError::Exists(_))
    ));
    assert_eq!(std::fs::read(&manifest_path).unwrap(), before);
    assert!(hidden(pdf_path.parent().unwrap()).is_empty());
}

#[test]
fn a_failed_rename_leaves_no_complete_batch() {
    let dir = tempfile::tempdir().unwrap();
    let postage = Postage::default();
    let (pdf_path, manifest_path) = batch_paths(dir.path(), &tenant(), day(), 1);
    let t = tenant();
    let req = || BatchRequest {
        tenant: &t,
        day: day(),
        seq: 1,
        letters: vec![letter(1, "Özil", "K1", "10115", "Hallo")],
        postage: &postage,
    };
    let tenant_dir = pdf_path.parent().unwrap();
    // A directory in the way makes the rename of the PDF fail: nothing
    // stands under a final name, and no temporary file is left.
    std::fs::create_dir_all(&pdf_path).unwrap();
    assert!(matches!(
        write_batch(dir.path(), req()),
        Err(LetterError::Files(_))
    ));
    assert!(!manifest_path.exists());
    assert!(hidden(tenant_dir).is_empty());
    assert!(!batch_complete(dir.path(), &tenant(), day(), 1));
    std::fs::remove_dir(&pdf_path).unwrap();

    // Now the manifest's rename fails: the PDF is in place, but without
    // its manifest the batch is not complete.
    std::fs::create_dir_all(&manifest_path).unwrap();
    assert!(write_batch(dir.path(), req()).is_err());
    assert!(pdf_path.is_file());
    assert!(!batch_complete(dir.path(), &tenant(), day(), 1));
    assert!(hidden(tenant_dir).is_empty());
    std::fs::remove_dir(&manifest_path).unwrap();

    // The retry completes the batch and leaves no temp file behind.
    write_batch(dir.path(), req()).unwrap();
    assert!(batch_complete(dir.path(), &tenant(), day(), 1));
    assert!(hidden(tenant_dir).is_empty());
    let rows = manifest_rows(&manifest_path);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][3], "Özil");
}

/// A manifest that is a link (planted by whoever may write the folder) is
/// no complete batch, and is not read through.
#[test]
fn a_manifest_that_is_a_link_is_no_complete_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest_path) = batch_paths(dir.path(), &tenant(), day(), 1);
    std::fs::create_dir_all(manifest_path.parent().unwrap()).unwrap();
    let elsewhere = dir.path().join("elsewhere.csv");
    std::fs::write(&elsewhere, "sequence,message\n").unwrap();
    std::os::unix::fs::symlink(&elsewhere, &manifest_path).unwrap();
    assert!(!batch_complete(dir.path(), &tenant(), day(), 1));
}
