//! Per-message return paths (VERP) and unsubscribe tokens.
//!
//! Every email goes out with its own envelope sender,
//! `bounce+{tenant}.{id}.{tag}@{domain}`, and its own unsubscribe mailbox,
//! `unsubscribe+{tenant}.{id}.{tag}@{domain}`, so that whatever comes back
//! names the message it is about without parsing the returned text.
//!
//! The tag is the first 5 bytes (10 hex digits) of a keyed BLAKE3 hash over
//! `"{kind}/{tenant}/{id}"` under the daemon's 32-byte secret. Message ids
//! are sequential and tenant ids guessable, so without the tag anyone could
//! mail `bounce+d001.42@…` and have a customer's address marked dead or
//! unsubscribed; with it, an address we did not make is refused. The bounce
//! and unsubscribe tags differ, so a recipient who learns their return path
//! cannot derive an unsubscribe for it, nor the other way round.
//!
//! Tenant ids contain only `[a-z0-9_-]` and ids only digits, so `.` separates
//! the parts unambiguously and the whole local part is case-insensitive
//! (relays that change the case of a local part do not break matching).

use std::fmt;

use touchpoint_common::TenantId;

/// Hex digits in a tag: 5 bytes of the keyed hash.
const TAG_HEX_LEN: usize = 10;

/// Which mailbox a VERP address belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerpKind {
    /// The envelope sender: delivery reports and auto-replies come here.
    Bounce,
    /// The `mailto:` of `List-Unsubscribe`: any mail here asks to stop.
    Unsubscribe,
}

impl VerpKind {
    /// The local-part prefix (without the `+`) and the hash domain separator.
    pub fn prefix(self) -> &'static str {
        match self {
            VerpKind::Bounce => "bounce",
            VerpKind::Unsubscribe => "unsubscribe",
        }
    }
}

impl fmt::Display for VerpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

fn tag(kind: VerpKind, tenant: &str, id: u64, secret: &[u8; 32]) -> String {
    keyed_tag(&format!("{}/{tenant}/{id}", kind.prefix()), secret)
}

/// The first [`TAG_HEX_LEN`] hex digits of the keyed hash of `input`.
fn keyed_tag(input: &str, secret: &[u8; 32]) -> String {
    let hash = blake3::keyed_hash(secret, input.as_bytes());
    let mut out = String::with_capacity(TAG_HEX_LEN);
    for b in &hash.as_bytes()[..TAG_HEX_LEN / 2] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Compares without an early exit, so response timing does not reveal how
/// many leading digits of a guessed tag were right.
fn tags_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn token(kind: VerpKind, tenant: &TenantId, id: u64, secret: &[u8; 32]) -> String {
    format!("{tenant}.{id}.{}", tag(kind, tenant.as_str(), id, secret))
}

/// The envelope sender (return path) for message `id` of `tenant`.
pub fn bounce_address(tenant: &TenantId, id: u64, domain: &str, secret: &[u8; 32]) -> String {
    format!(
        "bounce+{}@{domain}",
        token(VerpKind::Bounce, tenant, id, secret)
    )
}

/// The unsubscribe mailbox (`List-Unsubscribe: <mailto:…>`) for message `id`.
pub fn unsubscribe_address(tenant: &TenantId, id: u64, domain: &str, secret: &[u8; 32]) -> String {
    format!(
        "unsubscribe+{}@{domain}",
        token(VerpKind::Unsubscribe, tenant, id, secret)
    )
}

/// The `t=` parameter of the brand's one-click unsubscribe URL (RFC 8058):
/// `{tenant}.{id}.{tag}`, the same tag as the unsubscribe address, since
/// both grant the same thing. Only URL-safe characters.
pub fn unsubscribe_token(tenant: &TenantId, id: u64, secret: &[u8; 32]) -> String {
    token(VerpKind::Unsubscribe, tenant, id, secret)
}

/// Checks a token made by [`unsubscribe_token`]; `None` if it is malformed
/// or its tag is wrong.
pub fn parse_unsubscribe_token(token: &str, secret: &[u8; 32]) -> Option<(TenantId, u64)> {
    parse_token(VerpKind::Unsubscribe, token.trim(), secret)
}

/// `{tenant}.{id}.{tag}` → tenant and id, if the tag matches. Case is folded:
/// every valid token is lower case.
fn parse_token(kind: VerpKind, token: &str, secret: &[u8; 32]) -> Option<(TenantId, u64)> {
    let token = token.to_ascii_lowercase();
    let mut parts = token.split('.');
    let (tenant, id, given) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let id = parse_id(id)?;
    let tenant = TenantId::new(tenant).ok()?;
    if given.len() != TAG_HEX_LEN {
        return None;
    }
    let expected = tag(kind, tenant.as_str(), id, secret);
    tags_equal(given, &expected).then_some((tenant, id))
}

/// The token of a tracked link (click tracking): `{tenant}.{id}.{link}.{tag}`,
/// `link` counted from 1 in the order the message's links were tracked.
/// The tag is the unsubscribe token's keyed hash under the same secret,
/// over its own domain (`click/{tenant}/{id}/{link}`), so a click token
/// grants no unsubscribe and an unsubscribe token no click. It names the
/// link, never carries its address: the address is looked up in what the
/// message was rendered with.
pub fn click_token(tenant: &TenantId, id: u64, link: u32, secret: &[u8; 32]) -> String {
    format!(
        "{tenant}.{id}.{link}.{}",
        click_tag(tenant.as_str(), id, link, secret)
    )
}

fn click_tag(tenant: &str, id: u64, link: u32, secret: &[u8; 32]) -> String {
    keyed_tag(&format!("click/{tenant}/{id}/{link}"), secret)
}

/// Checks a token made by [`click_token`]: tenant, message id and link, or
/// `None` if it is malformed or its tag is wrong.
pub fn parse_click_token(token: &str, secret: &[u8; 32]) -> Option<(TenantId, u64, u32)> {
    let token = token.trim().to_ascii_lowercase();
    let mut parts = token.split('.');
    let (tenant, id, link, given) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || given.len() != TAG_HEX_LEN {
        return None;
    }
    let id = parse_id(id)?;
    let link = u32::try_from(parse_id(link)?).ok().filter(|l| *l >= 1)?;
    let tenant = TenantId::new(tenant).ok()?;
    let expected = click_tag(tenant.as_str(), id, link, secret);
    tags_equal(given, &expected).then_some((tenant, id, link))
}

/// Digits only, in canonical form: `u64::from_str` would also take `+7`,
/// and `007` is not an id we ever wrote.
fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// The bare address in a header value: `Name <a@b>`, `<a@b>`, `a@b`,
/// `mailto:a@b`.
fn bare_address(addr: &str) -> &str {
    let mut a = addr.trim();
    if let Some(open) = a.rfind('<') {
        let rest = &a[open + 1..];
        a = rest.find('>').map_or(rest, |close| &rest[..close]);
    }
    let a = a.trim().trim_matches('"').trim();
    match a.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => &a[7..],
        _ => a,
    }
}

/// Recognises one of our VERP addresses for `domain`: the kind, tenant and
/// message id. Case-insensitive; tolerates angle brackets, a display name
/// and a `mailto:` scheme. `None` for anything else, including an address of
/// the right shape with a wrong tag (a forged or mangled bounce must not
/// invalidate a customer's address).
pub fn parse(addr: &str, domain: &str, secret: &[u8; 32]) -> Option<(VerpKind, TenantId, u64)> {
    let local = verp_local_part(addr, domain)?;
    let (kind, rest) = local.split_once('+')?;
    let kind = if kind.eq_ignore_ascii_case("bounce") {
        VerpKind::Bounce
    } else if kind.eq_ignore_ascii_case("unsubscribe") {
        VerpKind::Unsubscribe
    } else {
        return None;
    };
    let (tenant, id) = parse_token(kind, rest, secret)?;
    Some((kind, tenant, id))
}

/// True for an address in `domain` with a VERP prefix, whatever its tag: a
/// mail to such an address that fails [`parse`] is forged or mangled, not
/// merely unrelated.
pub fn looks_like_verp(addr: &str, domain: &str) -> bool {
    verp_local_part(addr, domain).is_some_and(|local| {
        local.split_once('+').is_some_and(|(prefix, _)| {
            prefix.eq_ignore_ascii_case("bounce") || prefix.eq_ignore_ascii_case("unsubscribe")
        })
    })
}

/// The local part of `addr` if its domain is `domain` (a trailing root dot
/// on either side is ignored).
fn verp_local_part<'a>(addr: &'a str, domain: &str) -> Option<&'a str> {
    let (local, dom) = bare_address(addr).rsplit_once('@')?;
    let dom = dom.strip_suffix('.').unwrap_or(dom);
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    dom.eq_ignore_ascii_case(domain).then_some(local)
}

/// Tenant and id from our Message-ID, `<tp.{tenant}.{id}@{domain}>` (angle
/// brackets optional), as quoted by a report that lost the return path.
/// Message-IDs carry no tag: the caller should trust this less than a VERP
/// match.
pub fn message_id_target(message_id: &str) -> Option<(TenantId, u64)> {
    let mut m = message_id.trim();
    if let Some(inner) = m.strip_prefix('<') {
        m = inner.strip_suffix('>')?;
    }
    let (local, dom) = m.trim().rsplit_once('@')?;
    if dom.is_empty() || dom.contains(['<', '>', '@', ' ']) {
        return None;
    }
    let rest = local.strip_prefix("tp.")?;
    let (tenant, id) = rest.split_once('.')?;
    Some((TenantId::new(tenant).ok()?, parse_id(id)?))
}

#[cfg(test)]
mod tests;
