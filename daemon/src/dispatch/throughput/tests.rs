use super::*;

#[test]
fn counts_per_minute_and_forgets_after_an_hour() {
    let t = Throughput::default();
    let base = 1_000 * 60_000;
    t.record(base, 3);
    t.record(base + 59_999, 2);
    t.record(base + 60_000, 7);
    let h = t.last_hour(base + 60_000);
    assert_eq!(h.len(), 60);
    assert_eq!(&h[58..], &[5, 7]);
    assert_eq!(h.iter().sum::<u64>(), 12);
    // 59 minutes later the first minute is the oldest still shown.
    let h = t.last_hour(base + 59 * 60_000);
    assert_eq!((h[0], h[1]), (5, 7));
    let h = t.last_hour(base + 61 * 60_000);
    assert_eq!(h.iter().sum::<u64>(), 0);
}
