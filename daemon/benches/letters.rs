//! Letter batch benchmark (release mode):
//!
//! ```sh
//! cargo bench -p touchpoint-daemon --bench letters              # 10k and 100k letters
//! cargo bench -p touchpoint-daemon --bench letters -- 20000     # chosen sizes
//! ```
//!
//! Letters carry generated German customers (names, streets and towns with
//! umlauts, from the demo data) and the brand's service letter with one to
//! three due services; every third letter has a longer local offer, so the
//! batch is a mix of one- and two-page letters. Each measurement runs in a
//! fresh child process, so peak RSS (VmHWM) belongs to that measurement:
//!
//! 1. render: `pdf::render_batch` of the whole batch into memory, single core;
//! 2. write: `letters::write_batch` — sort by region, render, manifest,
//!    both files synced and renamed into a temporary directory.
//!
//! "input MB" is the resident memory after generating the letters, before
//! rendering (the batch's own size in memory, plus the process).

mod common;

use common::{peak_rss_mb, rss_mb};

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use touchpoint_common::postage::Postage;
use touchpoint_common::{Date, TenantId};
use touchpoint_datagen::{demo_dealers, records, ExportOptions};
use touchpointd::dispatch::letters::{write_batch, BatchRequest};
use touchpointd::render::pdf::{render_batch, Letter};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(mode) = std::env::var_os("TP_BENCH_CHILD") {
        let n = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
        child(&mode.to_string_lossy(), n);
        return;
    }
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000];
    }
    println!(
        "touchpoint letter batch benchmark — {} cores, one batch per size, single-threaded",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    let mut rows = Vec::new();
    for n in sizes {
        let render = run_child("render", n);
        let write = run_child("write", n);
        assert_eq!(get(&render, "pages"), get(&write, "pages"), "same letters");
        let mb = get(&render, "pdf_bytes") / 1e6;
        rows.push(format!(
            "| {n} | {:.0} | {:.0} / {:.0} | {:.1} | {:.2} | {:.0} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} |",
            get(&render, "pages"),
            get(&render, "one_page"),
            get(&render, "two_pages"),
            mb,
            get(&render, "secs"),
            n as f64 / get(&render, "secs"),
            mb / get(&render, "secs"),
            get(&render, "rss_mb"),
            get(&write, "secs"),
            n as f64 / get(&write, "secs"),
            get(&write, "rss_mb"),
            get(&render, "input_mb"),
        ));
    }
    println!("| letters | pages | 1-page / 2-page letters | PDF MB | render s | render letters/s | render MB/s | render peak RSS MB | write_batch s | write_batch letters/s | write_batch peak RSS MB | input MB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
}

fn get(out: &str, key: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn run_child(mode: &str, n: usize) -> String {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .env("TP_BENCH_CHILD", mode)
        .arg(n.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("child");
    if !out.status.success() {
        panic!("benchmark child {mode} failed");
    }
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn child(mode: &str, n: usize) {
    let letters = letters(n);
    let input_mb = rss_mb();
    let mut out = String::new();
    match mode {
        "render" => {
            let t = Instant::now();
            let (pdf, pages) = render_batch(&letters);
            let secs = t.elapsed().as_secs_f64();
            let _ = writeln!(out, "secs={secs}");
            let _ = writeln!(out, "pdf_bytes={}", pdf.len());
            let _ = writeln!(out, "pages={}", pages.iter().sum::<u32>());
            let _ = writeln!(
                out,
                "one_page={}",
                pages.iter().filter(|&&p| p == 1).count()
            );
            let _ = writeln!(
                out,
                "two_pages={}",
                pages.iter().filter(|&&p| p == 2).count()
            );
            assert!(pages.iter().all(|&p| (1..=2).contains(&p)), "1–2 pages");
        }
        "write" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let tenant = TenantId::new("d001").expect("tenant");
            let postage = Postage::default();
            let t = Instant::now();
            let report = write_batch(
                dir.path(),
                BatchRequest {
                    tenant: &tenant,
                    day: Date::from_ymd(2026, 11, 23).expect("day"),
                    seq: 1,
                    letters,
                    postage: &postage,
                },
            )
            .expect("write batch");
            let secs = t.elapsed().as_secs_f64();
            let _ = writeln!(out, "secs={secs}");
            let _ = writeln!(
                out,
                "pages={}",
                report.lines.iter().map(|l| l.pages).sum::<u32>()
            );
            let _ = writeln!(out, "postage_cents={}", report.total.cents());
        }
        other => panic!("unknown mode {other}"),
    }
    let _ = writeln!(out, "input_mb={input_mb}");
    let _ = writeln!(out, "rss_mb={}", peak_rss_mb());
    print!("{out}");
}

const SERVICES: [(&str, &str); 4] = [
    ("Inspektion", "fällig am 15.12.2026"),
    ("Hauptuntersuchung (HU)", "fällig im Januar 2027"),
    ("Wintercheck", "empfohlen bis 31.12.2026"),
    ("Bremsflüssigkeitswechsel", "fällig am 02.02.2027"),
];

/// `n` letters for customers of the demo dealers, cycling through them.
fn letters(n: usize) -> Vec<Letter> {
    let as_of = Date::from_ymd(2026, 11, 23).expect("day");
    let mut people = Vec::new();
    for spec in demo_dealers(30) {
        for r in records(&spec, &ExportOptions::default(), as_of) {
            let c = r.customer;
            let model = r
                .vehicles
                .first()
                .map_or("Nordwagen".to_string(), |v| v.model.clone());
            people.push((c, model));
            if people.len() >= 20_000 {
                break;
            }
        }
    }
    (0..n)
        .map(|i| {
            let (c, model) = &people[i % people.len()];
            let name = c.display_name();
            let salutation = match c.salutation {
                touchpoint_common::domain::Salutation::Mr => {
                    format!("Sehr geehrter Herr {},", c.last_name)
                }
                touchpoint_common::domain::Salutation::Ms => {
                    format!("Sehr geehrte Frau {},", c.last_name)
                }
                _ => "Guten Tag,".to_string(),
            };
            let mut bullets = String::new();
            for (title, due) in SERVICES.iter().take(1 + i % 3) {
                let _ = writeln!(bullets, "  - {title} für Ihren {model}: {due}");
            }
            let offer = if i % 3 == 2 {
                "\nUnser Winterangebot: Bis zum 31. Januar prüfen wir Batterie, Beleuchtung, \
                 Reifen, Scheibenwischer und Frostschutz für nur 29,90 € – und das Ergebnis \
                 erhalten Sie schriftlich. Während Ihr Fahrzeug bei uns in der Werkstatt ist, \
                 stellen wir Ihnen auf Wunsch kostenlos einen Ersatzwagen zur Verfügung oder \
                 bringen Sie mit unserem Hol- und Bringservice nach Hause oder zur Arbeit.\n\n\
                 Außerdem gilt bis Jahresende: 15 % auf alle Winterkompletträder aus unserem \
                 Zubehörprogramm, fachgerecht montiert und eingelagert. Fragen Sie einfach bei \
                 der Terminvereinbarung danach, wir beraten Sie gerne persönlich.\n\n\
                 Für Ihre Sicherheit im Straßenverkehr überprüfen unsere Mechatroniker außerdem \
                 Stoßdämpfer, Lenkung und Achsvermessung; kleinere Mängel beheben wir nach \
                 Rücksprache sofort, größere Arbeiten erst nach Ihrer ausdrücklichen Freigabe.\n\n\
                 Und wenn Sie möchten, reinigen wir Ihren Wagen nach dem Werkstattbesuch innen \
                 und außen – damit Sie gut gerüstet in die kalte Jahreszeit starten.\n"
            } else {
                ""
            };
            let body = format!(
                "Wolfsburg, 23.11.2026\n\n\
                 Ihre nächste Inspektion\n\n\
                 {salutation}\n\n\
                 Ihr Nordwagen hat sich eine Pause verdient: Nach unseren Unterlagen ist die\n\
                 nächste Inspektion bald fällig.\n\
                 {bullets}\n\
                 Mit der Inspektion nach Herstellervorgabe bleiben Ihre Garantie- und\n\
                 Kulanzansprüche erhalten, und Sie fahren sicher und wirtschaftlich. Unsere\n\
                 Werkstatt verwendet ausschließlich Nordwagen Originalteile.\n\n\
                 Rufen Sie uns an unter 05361 123-0 – wir finden gemeinsam einen Termin,\n\
                 der Ihnen passt.\n\
                 {offer}\n\
                 Öffnungszeiten: Mo–Fr 7:00–18:00 Uhr, Sa 8:00–12:00 Uhr\n\n\
                 Mit freundlichen Grüßen\n\n\
                 Ihr Serviceteam\n\
                 Autohaus Jäger & Söhne\n\n\
                 Nordwagen Deutschland GmbH · Am Werkstor 1 · 38440 Wolfsburg\n\
                 Amtsgericht Braunschweig HRB 210001 · Geschäftsführung: Dr. Katrin Sommer\n"
            );
            let a = &c.address;
            Letter {
                message: i as u64 + 1,
                recipient: c.customer_no.clone(),
                address: vec![
                    name,
                    format!("{} {}", a.street, a.house_no),
                    format!("{} {}", a.postcode, a.city),
                ],
                postcode: a.postcode.clone(),
                sender_line: "Autohaus Jäger & Söhne · Porschestraße 12 · 38440 Wolfsburg".into(),
                info: vec![
                    "Autohaus Jäger & Söhne GmbH".into(),
                    "Telefon 05361 123-0".into(),
                    "service@jaeger-soehne.de".into(),
                    "Ihre Kundennummer: ".to_string() + &c.customer_no,
                ],
                logo: Some("JÄGER & SÖHNE".into()),
                date: "23.11.2026".into(),
                body,
            }
        })
        .collect()
}
