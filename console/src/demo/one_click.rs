//! The demo's RFC 8058 one-click unsubscribe: the web link of one email in
//! the spool, POSTed to the daemon's HTTP endpoint as a mail provider
//! would, and the message's history read back over the socket.

use std::path::Path;

use anyhow::{bail, Context as _};
use touchpoint_common::TenantId;

use crate::client::Client;

/// What the message's history says once the POST was taken.
const UNSUBSCRIBED: &str = "recipient unsubscribed from email";

/// One line for the summary, or an error that says what did not work.
pub(super) async fn show(
    client: &mut Client,
    spool: &Path,
    served: &str,
) -> anyhow::Result<String> {
    let Some((tenant, id, link)) = first_link(spool, &format!("{served}/u/"))? else {
        // A quiet day (a Sunday, say) sends nothing, so no link exists yet.
        return Ok(format!(
            "  one-click   served on {served}/u/<token>; no email went out today to try it on\n"
        ));
    };
    let url = link.clone();
    let status = tokio::task::spawn_blocking(move || post(&url))
        .await
        .context("the HTTP client task")??;
    if status != 200 {
        bail!("one-click POST {link} answered {status}, not 200");
    }
    let m = client
        .message(&tenant, id)
        .await
        .with_context(|| format!("reading message {tenant} #{id}"))?;
    if !m.history.iter().any(|h| h.2 == UNSUBSCRIBED) {
        bail!("one-click POST {link} answered 200 but message {tenant} #{id} does not record it");
    }
    Ok(format!(
        "  one-click   POST {link} → 200: {tenant} #{id} {UNSUBSCRIBED} (touchpoint message --tenant {tenant} {id})\n"
    ))
}

fn post(url: &str) -> anyhow::Result<u16> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let r = agent
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("List-Unsubscribe=One-Click")
        .with_context(|| format!("POST {url}"))?;
    Ok(r.status().as_u16())
}

/// The first email in `<spool>/<tenant>/<id>.eml` (by tenant, then id)
/// whose `List-Unsubscribe` links this daemon (`prefix`): a kept demo
/// state may hold mail that links an earlier run's port.
fn first_link(spool: &Path, prefix: &str) -> anyhow::Result<Option<(TenantId, u64, String)>> {
    let Ok(tenants) = std::fs::read_dir(spool) else {
        return Ok(None);
    };
    let mut tenants: Vec<_> = tenants.filter_map(Result::ok).map(|e| e.path()).collect();
    tenants.sort();
    for dir in tenants {
        let Some(tenant) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| TenantId::new(n).ok())
        else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        // `<id>.eml`, the id zero-padded.
        let mut mails: Vec<(u64, std::path::PathBuf)> = files
            .filter_map(Result::ok)
            .filter_map(|e| {
                let id = e.file_name().to_str()?.strip_suffix(".eml")?.parse().ok()?;
                Some((id, e.path()))
            })
            .collect();
        mails.sort();
        for (id, path) in mails {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if let Some(link) = web_link(&text).filter(|l| l.starts_with(prefix)) {
                return Ok(Some((tenant, id, link)));
            }
        }
    }
    Ok(None)
}

/// The `<http…>` entry of the `List-Unsubscribe` header (unfolded).
fn web_link(message: &str) -> Option<String> {
    let message = message.replace("\r\n", "\n");
    let head = message
        .split("\n\n")
        .next()?
        .replace("\n ", " ")
        .replace("\n\t", " ");
    let line = head
        .lines()
        .find(|l| l.len() > 17 && l[..17].eq_ignore_ascii_case("List-Unsubscribe:"))?;
    let open = line.find("<http")? + 1;
    let close = line[open..].find('>')? + open;
    Some(line[open..close].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_link_is_found_in_a_folded_header() {
        let mail = "From: a@b\r\nList-Unsubscribe: <mailto:unsubscribe+d001.7.ab@bounce.example>,\r\n <http://127.0.0.1:8025/u/d001.7.0123456789>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nbody <http://x>\r\n";
        assert_eq!(
            web_link(mail).as_deref(),
            Some("http://127.0.0.1:8025/u/d001.7.0123456789")
        );
        assert_eq!(
            web_link("From: a@b\r\n\r\nList-Unsubscribe: <http://x>\r\n"),
            None
        );
    }
}
