//! Control groups: which eligible recipients of a service get no message on
//! purpose, so that their responses show what the message adds.
//!
//! The draw is a hash of (tenant, recipient, service, season), not a random
//! number: the same recipient falls on the same side in every run of the
//! season, on every machine, whatever else changed in the data. The
//! season is what a recipient is measured over: the due date's year for
//! the recurring occasions (service, inspection, warranty, birthday,
//! quality check), the campaign's `from..to` for a campaign, so a new
//! campaign draws anew and a reminder's group holds for the year.
//!
//! The draw happens after consent and channel (a recipient who cannot be
//! reached is in neither group) and before bundling, capping and budget:
//! those depend on the recipient's other messages and on the money left,
//! which a control member does not take, so deciding it after them would
//! let a control member use up a contact or a budget that a real message
//! then misses.

use touchpoint_common::policy::{OccasionKind, Service, MAX_CONTROL_PERCENT};

use touchpoint_common::outbox::Occasion;

/// Resolution of the draw: basis points, so fractional shares stay exact
/// enough for the 0..=50 % a policy may ask for.
const SCALE: u64 = 10_000;

/// The season an occasion's draw is made for (see the module's comment).
pub fn season(o: &Occasion, service: &Service) -> String {
    match (o.kind, service.from, service.to) {
        (OccasionKind::Campaign, Some(from), Some(to)) => format!("{}..{}", from.0, to.0),
        _ => o.due.naive().format("%Y").to_string(),
    }
}

/// Whether the recipient is in the service's control group for this
/// occasion's season.
pub fn is_control(tenant: &str, recipient: &str, o: &Occasion, service: &Service) -> bool {
    let percent = u64::from(service.control_percent.min(MAX_CONTROL_PERCENT));
    if percent == 0 {
        return false;
    }
    draw(tenant, recipient, &o.service, &season(o, service)) < percent * SCALE / 100
}

/// A number in `0..SCALE`, the same for the same four parts. The parts are
/// length-prefixed so that no two different tuples hash the same bytes.
pub fn draw(tenant: &str, recipient: &str, service: &str, season: &str) -> u64 {
    let mut h = blake3::Hasher::new();
    for part in [tenant, recipient, service, season] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let bytes = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    u64::from_be_bytes(first) % SCALE
}

/// The *why* of a control record.
pub fn why_text(service_id: &str, service: &Service, season: &str) -> String {
    format!(
        "{} % of {service_id} (season {season}), to measure what the message adds: no message is sent",
        service.control_percent
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_is_a_pure_function_of_its_four_parts() {
        let a = draw("d001", "K1", "winter_check", "2026");
        assert_eq!(a, draw("d001", "K1", "winter_check", "2026"));
        // Moving a byte from one part to the next is another tuple.
        assert_ne!(
            draw("d001", "K1", "winter_check", "2026"),
            draw("d001K", "1", "winter_check", "2026")
        );
        assert!(a < SCALE);
    }

    /// 100 000 recipients at 5 %: the count is binomial(n, p), with mean
    /// n·p = 5000 and standard deviation √(n·p·(1−p)) ≈ 68.9. Five standard
    /// deviations (±345) fail a fair draw once in about 1.7 million runs;
    /// the draw is deterministic, so this either always passes or never.
    #[test]
    fn the_share_drawn_matches_the_policy_within_the_binomial_tolerance() {
        let n = 100_000u64;
        for (percent, season) in [(5u64, "2027"), (20, "2026-11-30..2027-01-31")] {
            let p = percent as f64 / 100.0;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            let drawn = (0..n)
                .filter(|i| {
                    draw("d001", &format!("K{i:06}"), "winter_check", season)
                        < percent * SCALE / 100
                })
                .count() as f64;
            let mean = n as f64 * p;
            assert!(
                (drawn - mean).abs() <= 5.0 * sd,
                "{percent} %: drew {drawn}, expected {mean} ± {}",
                5.0 * sd
            );
        }
    }

    #[test]
    fn another_season_or_service_draws_anew() {
        let inside = |service: &str, season: &str| {
            (0..10_000)
                .filter(|i| draw("d001", &format!("K{i}"), service, season) < 500)
                .collect::<Vec<_>>()
        };
        let a = inside("service_due", "2027");
        assert_ne!(a, inside("service_due", "2028"));
        assert_ne!(a, inside("hu_reminder", "2027"));
        assert_eq!(a, inside("service_due", "2027"));
    }
}
