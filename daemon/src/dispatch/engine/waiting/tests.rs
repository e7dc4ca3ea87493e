use super::*;

fn tid(s: &str) -> TenantId {
    TenantId::new(s.to_string()).expect("tenant id")
}

#[test]
fn a_tenants_waiting_emails_are_forgotten_when_its_data_changes_and_no_one_elses() {
    let (a, b) = (tid("d001"), tid("d002"));
    let mut w = Waiting::default();
    w.note(&a, 7, 1, "example.org");
    w.note(&a, 7, 2, "example.net");
    w.note(&b, 3, 1, "example.org");
    assert_eq!(w.domain(&a, 1), Some("example.org"));
    assert_eq!(w.domain(&a, 2), Some("example.net"));
    assert_eq!(w.len(), 3);
    // The same version changes nothing; another forgets a's only.
    w.data_is(&a, 7);
    assert_eq!(w.len(), 3);
    w.data_is(&a, 8);
    assert_eq!((w.domain(&a, 1), w.domain(&a, 2)), (None, None));
    assert_eq!(w.domain(&b, 1), Some("example.org"));
    assert_eq!(w.len(), 1);
    // Noted again under the new version, then taken.
    w.note(&a, 8, 1, "example.com");
    assert_eq!(w.domain(&a, 1), Some("example.com"));
    w.forget(&a, 1);
    w.forget(&a, 1);
    assert_eq!((w.domain(&a, 1), w.len()), (None, 1));
    w.clear();
    assert_eq!((w.domain(&b, 1), w.len()), (None, 0));
}

#[test]
fn an_email_noted_again_keeps_its_latest_domain_and_counts_once() {
    let a = tid("d001");
    let mut w = Waiting::default();
    w.note(&a, 1, 5, "example.org");
    w.note(&a, 1, 5, "example.net");
    assert_eq!((w.domain(&a, 5), w.len()), (Some("example.net"), 1));
    // Noted under a newer version: the older notes are gone.
    w.note(&a, 2, 6, "example.org");
    assert_eq!((w.domain(&a, 5), w.len()), (None, 1));
}
