//! `touchpoint learning`: what is learned per service and channel, with
//! its evidence and each lead's pooled figures (the JSON is the daemon's
//! answer as it is).

use std::fmt::Write as _;

use touchpoint_common::learning::{count, percent, Arm, ArmFigures, LearnedService, LearnedState};

use super::visible::visible;

/// One line per service and channel in force, for the Policies view and
/// the demo: `service_due email: lead time: … ; send time: …`.
pub fn learned_line(s: &LearnedService) -> String {
    visible(&format!(
        "{} {}: {}; {}",
        s.service,
        s.channel,
        s.lead_text(),
        s.slot_text()
    ))
    .into_owned()
}

fn arm_row(out: &mut String, a: &ArmFigures) {
    if !a.passes {
        let _ = writeln!(
            out,
            "  {:<11} {:>7}  {:>9}  {:>9}  {:>7}  {:>9}  {:>9}  {:>10}",
            a.arm.to_string(),
            "-",
            "-",
            "-",
            "-",
            "-",
            percent(a.mean()),
            format!("{:.2}", a.objective / 100.0)
        );
        return;
    }
    let _ = writeln!(
        out,
        "  {:<11} {:>7}  {:>9}  {:>9}  {:>7}  {:>9}  {:>9}  {:>10}",
        a.arm.to_string(),
        a.dealers,
        count(a.sent),
        count(a.responses),
        a.rate().map(percent).unwrap_or_else(|| "-".into()),
        if matches!(a.arm, Arm::Lead(_)) && !a.has_baseline() {
            "none".to_string()
        } else {
            percent(a.baseline)
        },
        percent(a.mean()),
        format!("{:.2}", a.objective / 100.0)
    );
}

/// The text of `touchpoint learning`.
pub fn learning(state: &LearnedState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "learned values, version {}", state.version);
    if state.services.is_empty() {
        out.push_str("  no service learns (learn = true in the brand policy)\n");
        return out;
    }
    for s in &state.services {
        let _ = writeln!(
            out,
            "\n{} {} (lead {}, slot {}{})",
            visible(&s.service),
            s.channel,
            s.lead.source.as_str(),
            s.slot.source.as_str(),
            if s.frozen { ", frozen" } else { "" }
        );
        let _ = writeln!(out, "  {} (version {})", s.lead_text(), s.lead.version);
        let _ = writeln!(out, "  {} (version {})", s.slot_text(), s.slot.version);
        let _ = writeln!(
            out,
            "  evidence: {} dealers (at least {}), {} reminders; exploring {} %{}",
            s.dealers,
            s.min_dealers,
            count(s.sent),
            if s.frozen { 0 } else { s.explore_percent },
            s.incremental
                .map(|v| format!("; incremental response {} per message", percent(v)))
                .unwrap_or_default()
        );
        if !s.lead.arms.is_empty() {
            let _ = writeln!(
                out,
                "  {:<11} {:>7}  {:>9}  {:>9}  {:>7}  {:>9}  {:>9}  {:>10}",
                "lead",
                "dealers",
                "sent",
                "responses",
                "rate",
                "baseline",
                "posterior",
                "€/message"
            );
            for a in &s.lead.arms {
                arm_row(&mut out, a);
            }
            let baselined = s.lead.arms.iter().any(ArmFigures::has_baseline);
            if baselined && s.lead.arms.iter().any(|a| a.passes && !a.has_baseline()) {
                out.push_str(
                    "  a lead whose baseline shows 'none' is not chosen: its control baseline does not pass the privacy rule\n",
                );
            }
        }
        let passing: Vec<&ArmFigures> = s.slot.arms.iter().filter(|a| a.passes).collect();
        if !passing.is_empty() {
            let _ = writeln!(
                out,
                "  {:<11} {:>7}  {:>9}  {:>9}  {:>7}  {:>9}  {:>9}  {:>10}",
                "slot",
                "dealers",
                "sent",
                "responses",
                "rate",
                "baseline",
                "posterior",
                "€/message"
            );
            for a in passing {
                arm_row(&mut out, a);
            }
            // The slot arms pool every service learning on the channel
            // (the daemon's `learning::pool_slots`); a listing for one
            // service does not know the others.
            let family: Vec<String> = state
                .services
                .iter()
                .filter(|o| o.channel == s.channel && o.service != s.service)
                .map(|o| visible(&o.service).to_string())
                .collect();
            let _ = writeln!(
                out,
                "  slot figures pool the {} messages of every service learning on it{}; responses standardised to this service's rate and each message's lead",
                s.channel,
                if family.is_empty() {
                    String::new()
                } else {
                    format!(" (with {})", family.join(", "))
                }
            );
        }
    }
    out.push_str(
        "\n'-': a cell from fewer dealers than the brand's minimum, or dominated by one, is not used or shown\n",
    );
    out
}
