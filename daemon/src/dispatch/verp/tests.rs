#![allow(clippy::unwrap_used)]

use super::*;

const SECRET: [u8; 32] = [7; 32];
const DOMAIN: &str = "bounce.nordwagen.example";

fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

#[test]
fn bounce_address_has_the_documented_shape_and_tag() {
    let a = bounce_address(&t("autohaus-mueller"), 42, DOMAIN, &SECRET);
    let hash = blake3::keyed_hash(&SECRET, b"bounce/autohaus-mueller/42");
    let hex: String = hash.as_bytes()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(a, format!("bounce+autohaus-mueller.42.{hex}@{DOMAIN}"));
    assert_eq!(hex.len(), 10);
}

#[test]
fn round_trips_both_kinds() {
    for (tenant, id) in [("d001", 0u64), ("x_1-2", 7), ("a", u64::MAX)] {
        let b = bounce_address(&t(tenant), id, DOMAIN, &SECRET);
        let u = unsubscribe_address(&t(tenant), id, DOMAIN, &SECRET);
        assert_eq!(
            parse(&b, DOMAIN, &SECRET),
            Some((VerpKind::Bounce, t(tenant), id))
        );
        assert_eq!(
            parse(&u, DOMAIN, &SECRET),
            Some((VerpKind::Unsubscribe, t(tenant), id))
        );
    }
}

#[test]
fn kinds_have_different_tags() {
    let b = bounce_address(&t("d001"), 5, DOMAIN, &SECRET);
    let u = unsubscribe_address(&t("d001"), 5, DOMAIN, &SECRET);
    let btag = b.split(['.', '@']).nth(2).unwrap();
    let utag = u.split(['.', '@']).nth(2).unwrap();
    assert_ne!(btag, utag);
    // A bounce tag under the unsubscribe prefix is a forgery.
    let swapped = format!("unsubscribe+d001.5.{btag}@{DOMAIN}");
    assert_eq!(parse(&swapped, DOMAIN, &SECRET), None);
}

#[test]
fn tolerates_case_brackets_display_names_and_mailto() {
    let b = bounce_address(&t("d001"), 9, DOMAIN, &SECRET);
    let want = Some((VerpKind::Bounce, t("d001"), 9));
    for form in [
        format!("<{b}>"),
        format!("  {b}  "),
        format!("\"Autohaus <Müller>\" <{b}>"),
        format!("Mailer <{}>", b.to_uppercase()),
        format!("mailto:{b}"),
        format!("<MAILTO:{b}>"),
        b.replace(DOMAIN, "Bounce.NordWagen.Example."),
    ] {
        assert_eq!(parse(&form, DOMAIN, &SECRET), want, "{form}");
    }
}

#[test]
fn rejects_wrong_tags_domains_and_shapes() {
    let b = bounce_address(&t("d001"), 9, DOMAIN, &SECRET);
    let (local, _) = b.split_once('@').unwrap();
    let tag = local.rsplit('.').next().unwrap();
    let mut forged_tag = tag.to_string();
    let last = if tag.ends_with('0') { "1" } else { "0" };
    forged_tag.replace_range(9..10, last);
    for bad in [
        b.replace(tag, &forged_tag),
        b.replace(".9.", ".10."),
        b.replace(".9.", ".09."),
        b.replace(".9.", ".+9."),
        b.replace("d001", "d002"),
        b.replace(DOMAIN, "nordwagen.example"),
        b.replace(DOMAIN, "evil.example"),
        b.replace("bounce+", "bounces+"),
        b.replace(&format!(".{tag}"), ""),
        b.replace(tag, &tag[..9]),
        b.replace(tag, &format!("{tag}.x")),
        b.replace("d001", "D-001"),
        "bounce+@bounce.nordwagen.example".into(),
        "".into(),
        "<>".into(),
        "no-at-sign".into(),
    ] {
        assert_eq!(parse(&bad, DOMAIN, &SECRET), None, "{bad}");
    }
    // Another secret: another daemon's address.
    assert_eq!(parse(&b, DOMAIN, &[8; 32]), None);
}

#[test]
fn looks_like_verp_spots_forged_shapes() {
    assert!(looks_like_verp(
        "BOUNCE+d001.9.0000000000@bounce.nordwagen.example",
        DOMAIN
    ));
    assert!(looks_like_verp(
        "<unsubscribe+whatever@bounce.nordwagen.example>",
        DOMAIN
    ));
    assert!(!looks_like_verp(
        "postmaster@bounce.nordwagen.example",
        DOMAIN
    ));
    assert!(!looks_like_verp("bounce+d001.9.00@other.example", DOMAIN));
}

#[test]
fn unsubscribe_token_round_trips_and_rejects_forgeries() {
    let tok = unsubscribe_token(&t("d001"), 77, &SECRET);
    assert!(tok.starts_with("d001.77."));
    assert!(tok
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'));
    assert_eq!(
        parse_unsubscribe_token(&tok, &SECRET),
        Some((t("d001"), 77))
    );
    // The address and the token carry the same grant.
    let addr = unsubscribe_address(&t("d001"), 77, DOMAIN, &SECRET);
    assert_eq!(addr, format!("unsubscribe+{tok}@{DOMAIN}"));
    // A bounce tag is no unsubscribe token.
    let b = bounce_address(&t("d001"), 77, DOMAIN, &SECRET);
    let btok = b
        .strip_prefix("bounce+")
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert_eq!(parse_unsubscribe_token(btok, &SECRET), None);
    assert_eq!(parse_unsubscribe_token("d001.78.ffffffffff", &SECRET), None);
    assert_eq!(parse_unsubscribe_token("d001.77", &SECRET), None);
    assert_eq!(parse_unsubscribe_token("", &SECRET), None);
    assert_eq!(parse_unsubscribe_token(&tok, &[0; 32]), None);
}

#[test]
fn message_id_target_reads_our_format_only() {
    assert_eq!(
        message_id_target("<tp.autohaus-mueller.1234@mail.nordwagen.example>"),
        Some((t("autohaus-mueller"), 1234))
    );
    assert_eq!(
        message_id_target(" tp.d001.5@x.example "),
        Some((t("d001"), 5))
    );
    for bad in [
        "<tp.d001.5@x.example",
        "<tp.d001@x.example>",
        "<tp.d001.5.6@x.example>",
        "<tp.D001.5@x.example>",
        "<tp.d001.5@>",
        "<xx.d001.5@x.example>",
        "<CAF=abc123@mail.gmail.com>",
        "<tp.d001.-5@x.example>",
        "",
    ] {
        assert_eq!(message_id_target(bad), None, "{bad}");
    }
}

#[test]
fn click_tokens_round_trip_and_grant_nothing_else() {
    let tok = click_token(&t("d001"), 77, 2, &SECRET);
    assert!(tok.starts_with("d001.77.2."), "{tok}");
    assert_eq!(parse_click_token(&tok, &SECRET), Some((t("d001"), 77, 2)));
    assert_eq!(
        parse_click_token(&tok.to_ascii_uppercase(), &SECRET),
        Some((t("d001"), 77, 2))
    );
    // Another link, message or tenant under the same tag: refused.
    let tag = tok.rsplit('.').next().unwrap();
    for forged in [
        format!("d001.77.3.{tag}"),
        format!("d001.78.2.{tag}"),
        format!("d002.77.2.{tag}"),
        format!("d001.77.02.{tag}"),
        format!("d001.77.0.{tag}"),
        format!("d001.77.{tag}"),
        format!("{tok}.1"),
        String::new(),
    ] {
        assert_eq!(parse_click_token(&forged, &SECRET), None, "{forged}");
    }
    assert_eq!(parse_click_token(&tok, &[0; 32]), None);
    // Neither token stands in for the other.
    let unsub = unsubscribe_token(&t("d001"), 77, &SECRET);
    assert_eq!(parse_click_token(&unsub, &SECRET), None);
    assert_eq!(parse_unsubscribe_token(&tok, &SECRET), None);
    let unsub_tag = unsub.rsplit('.').next().unwrap();
    assert_eq!(
        parse_click_token(&format!("d001.77.2.{unsub_tag}"), &SECRET),
        None
    );
}
