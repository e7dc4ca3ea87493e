//! The pages a person sees. Short, German first (the recipients are the
//! dealers' customers) with an English line, no personal data (anyone
//! holding the link sees them, a mail scanner included), no script, no
//! outside resource; the dealer's name is the only variable and is escaped.

/// What `GET /u/{token}` shows: one button that makes the RFC 8058 POST
/// (the form's one field is exactly `List-Unsubscribe=One-Click`) to the
/// same address, so a page fronted by a proxy under another path still works.
pub(super) fn confirm(dealer: &str) -> String {
    let dealer = escape(dealer);
    frame(
        "E-Mails abbestellen",
        &format!(
            "<h1>E-Mails abbestellen</h1>\n\
             <p>Möchten Sie keine E-Mails mehr von <strong>{dealer}</strong> erhalten?</p>\n\
             <form method=\"post\" action=\"\">\n\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n\
             <button type=\"submit\">Abbestellen</button>\n\
             </form>\n\
             <p lang=\"en\">Unsubscribe from emails by {dealer}: press the button.</p>"
        ),
    )
}

/// What a successful POST answers (a mail client ignores the body).
pub(super) fn done(dealer: &str) -> String {
    let dealer = escape(dealer);
    frame(
        "Abbestellt",
        &format!(
            "<h1>Abbestellt</h1>\n\
             <p>Sie erhalten keine E-Mails mehr von <strong>{dealer}</strong>.</p>\n\
             <p lang=\"en\">You will receive no more emails from {dealer}.</p>"
        ),
    )
}

fn frame(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"de\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n\
         <style>body{{font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em}}\
         button{{font-size:1.1em;padding:.5em 1.5em}}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
}

/// Text into HTML, element content and quoted attribute values alike.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dealer_name_is_escaped_everywhere_it_stands() {
        let evil = "A&B <script>alert('x')</script> \"GmbH\"";
        for page in [confirm(evil), done(evil)] {
            assert!(!page.contains("<script>"), "{page}");
            assert!(page.contains(
                "A&amp;B &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;GmbH&quot;"
            ));
        }
    }

    #[test]
    fn the_form_posts_exactly_the_one_click_field() {
        let page = confirm("Autohaus");
        assert!(page.contains("<form method=\"post\" action=\"\">"));
        assert_eq!(page.matches("<input ").count(), 1);
        assert!(page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""));
    }
}
