use super::*;

const UNSUB: &str = "https://service.example/u/d001.7.0123456789";

fn run(text: &str, html: &str) -> Rewritten {
    rewrite(
        text,
        html,
        |u| u == UNSUB || u.starts_with("https://service.example/"),
        |n| format!("https://service.example/c/T{n}"),
    )
}

#[test]
fn text_links_are_rewritten_and_punctuation_stays_outside() {
    let text = format!(
        "Termin: https://werkstatt.example/termin?kunde=42&typ=hu.\n\
         (Mehr unter http://www.example.de/info) oder mailto:info@example.de\n\
         Nochmal: https://werkstatt.example/termin?kunde=42&typ=hu, danke!\n\
         Abmelden: {UNSUB}\n\
         xhttps://not.a.link/ und HTTPS://GROSS.example/A"
    );
    let r = run(&text, "");
    assert_eq!(
        r.links,
        [
            "https://werkstatt.example/termin?kunde=42&typ=hu",
            "http://www.example.de/info",
            "HTTPS://GROSS.example/A",
        ]
    );
    assert_eq!(
        r.text,
        format!(
            "Termin: https://service.example/c/T1.\n\
             (Mehr unter https://service.example/c/T2) oder mailto:info@example.de\n\
             Nochmal: https://service.example/c/T1, danke!\n\
             Abmelden: {UNSUB}\n\
             xhttps://not.a.link/ und https://service.example/c/T3"
        )
    );
}

#[test]
fn only_href_values_of_html_tags_are_rewritten() {
    let html = format!(
        "<p><a class=\"btn\" href=\"https://werkstatt.example/t?a=1&amp;b=2\">https://werkstatt.example/t?a=1&amp;b=2</a>\n\
         <a HREF='https://x.example/it&#39;s'>x</a> <a href=https://y.example/u>y</a>\n\
         <img src=\"https://cdn.example/logo.png\" alt=\"https://cdn.example/\">\n\
         <a data-href=\"https://z.example/\" title='href=\"https://z.example/\"'>z</a>\n\
         <!-- <a href=\"https://hidden.example/\"> -->\n\
         <a href=\"mailto:info@example.de\">Mail</a> <a href=\"{UNSUB}\">Abmelden</a>\n\
         <a href=\"{}\">Abmelden</a></p>",
        UNSUB.replace('/', "&#x2f;")
    );
    let r = run("", &html);
    assert_eq!(
        r.links,
        [
            "https://werkstatt.example/t?a=1&b=2",
            "https://x.example/it's",
            "https://y.example/u",
        ]
    );
    assert_eq!(
        r.html,
        format!(
            "<p><a class=\"btn\" href=\"https://service.example/c/T1\">https://werkstatt.example/t?a=1&amp;b=2</a>\n\
             <a HREF='https://service.example/c/T2'>x</a> <a href=https://service.example/c/T3>y</a>\n\
             <img src=\"https://cdn.example/logo.png\" alt=\"https://cdn.example/\">\n\
             <a data-href=\"https://z.example/\" title='href=\"https://z.example/\"'>z</a>\n\
             <!-- <a href=\"https://hidden.example/\"> -->\n\
             <a href=\"mailto:info@example.de\">Mail</a> <a href=\"{UNSUB}\">Abmelden</a>\n\
             <a href=\"{}\">Abmelden</a></p>",
            UNSUB.replace('/', "&#x2f;")
        ),
        "the unsubscribe link as a template escapes it is kept too"
    );
}

#[test]
fn one_address_in_both_parts_is_one_link_and_the_count_is_bounded() {
    let r = run(
        "https://a.example/x",
        "<a href=\"https://b.example/\">b</a><a href=\"https://a.example/x\">a</a>",
    );
    assert_eq!(r.links, ["https://a.example/x", "https://b.example/"]);
    assert!(r
        .html
        .ends_with("href=\"https://service.example/c/T1\">a</a>"));

    let many: String = (0..MAX_LINKS + 3)
        .map(|i| format!("https://a.example/{i} "))
        .collect();
    let long = format!("https://a.example/{}", "x".repeat(MAX_URL));
    let r = run(&format!("{many}{long}"), "");
    assert_eq!(r.links.len(), MAX_LINKS);
    assert!(r.text.contains(&format!("https://a.example/{MAX_LINKS} ")));
    assert!(r.text.ends_with(&long), "a long address is left as it is");
}

#[test]
fn nothing_to_track_leaves_both_parts_as_they_are() {
    let html = "<p>Hallo <b>Welt</b> <a href=\"#top\">oben</a> a < b</p>";
    let r = run("Hallo, keine Links hier. http:/kaputt", html);
    assert!(r.links.is_empty());
    assert_eq!(r.text, "Hallo, keine Links hier. http:/kaputt");
    assert_eq!(r.html, html);
}

/// A reference cut by the 12-byte look-ahead inside a character stopped
/// every email (a panic in the claim); and an `href` the mail client
/// fetches by itself (`<link>`, `<base>`) is no click.
#[test]
fn umlauts_after_an_ampersand_and_hrefs_no_reader_clicks() {
    let html = "<link rel=\"stylesheet\" href=\"https://fonts.example/css\">\
                <base href=\"https://base.example/\">\
                <a href=\"https://x.example/?a=1&q=Bremsenpüf\">x</a>\
                <AREA href=\"https://y.example/karte\">";
    let r = run("", html);
    assert_eq!(
        r.links,
        [
            "https://x.example/?a=1&q=Bremsenpüf",
            "https://y.example/karte"
        ]
    );
    assert!(
        r.html.contains("href=\"https://fonts.example/css\""),
        "{}",
        r.html
    );
    assert!(
        r.html.contains("href=\"https://base.example/\""),
        "{}",
        r.html
    );
    assert_eq!(unescape("a&q=Bremsenpüf&amp;"), "a&q=Bremsenpüf&");
}
