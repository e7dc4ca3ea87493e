//! The simulated network's side of the season: every vehicle whose service
//! or inspection falls due, its organic visit, what the messages the daemon
//! sent change about that, and what each message was worth by the hidden
//! model compared with the oracle. No I/O: the driver hands in what it read
//! from the daemon and writes out what this returns.

use std::collections::{BTreeMap, HashMap};

use touchpoint_common::domain::Channel;
use touchpoint_common::Date;
use touchpoint_datagen::truth::{Send, Slot, Truth};
use touchpoint_datagen::Record;

/// Assumed km per day between the last service and a simulated visit.
const KM_PER_DAY: u32 = 40;

/// One vehicle due for one modelled service in the season.
#[derive(Clone, Debug)]
pub(crate) struct Due {
    pub dealer: usize,
    pub customer_no: String,
    pub vin: String,
    pub service: String,
    pub due: Date,
    pub key: u64,
    /// Mileage and day of the last service, for the visit's km.
    pub km0: u32,
    pub day0: Date,
    /// The visit as things stand: organic until a message changes it.
    pub visit: Option<Date>,
    pub imported: bool,
    pub messaged: bool,
}

/// What one sent message was worth (expected incremental responses).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Worth {
    pub run: f64,
    pub oracle: f64,
}

/// The counts of one week.
#[derive(Clone, Debug, Default)]
pub(crate) struct WeekTally {
    pub sent: u64,
    pub control: u64,
    /// Messages evaluated against the oracle (occasion due late enough in
    /// the season that every lead of the grid was still possible).
    pub evaluated: u64,
    pub run: f64,
    pub oracle: f64,
    /// Occasions of messages the model does not know (other services, a
    /// vehicle or due date it does not track).
    pub unmodelled: u64,
    /// Leads and slots sent per service (evaluated messages): how often.
    pub arms: BTreeMap<String, BTreeMap<(u32, Slot), u64>>,
    /// Of the evaluated, those whose lead or slot was an exploration draw,
    /// and their share of `run` and `oracle` (the gap's decomposition).
    pub explored: u64,
    pub explored_run: f64,
    pub explored_oracle: f64,
}

/// The season's population and its visits.
pub(crate) struct World {
    pub truth: Truth,
    pub dealers: Vec<String>,
    pub dues: Vec<Due>,
    index: HashMap<(usize, String, String), usize>,
    /// Messages due before this day are not evaluated (see [`WeekTally::evaluated`]).
    pub evaluate_from: Date,
}

/// A message or control record as the driver read it from the daemon.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub dealer: usize,
    pub channel: Channel,
    pub control: bool,
    pub send_on: Date,
    pub send_at: u16,
    /// Its lead or slot was an exploration draw (its *why* says so).
    pub explored: bool,
    /// Each occasion's service, VIN and due date.
    pub occasions: Vec<(String, Option<String>, Date)>,
}

impl World {
    /// Every vehicle of `records` (per dealer) whose modelled service falls
    /// due from `from` to `to`, with its organic visit.
    pub fn new(
        truth: Truth,
        dealers: Vec<String>,
        records: &[Vec<Record>],
        from: Date,
        to: Date,
        evaluate_from: Date,
    ) -> Self {
        let mut dues = Vec::new();
        for (d, recs) in records.iter().enumerate() {
            for r in recs {
                for v in &r.vehicles {
                    let service_due = v.last_service_date.map(|l| l.add_months(12));
                    for (service, due) in [
                        ("service_due", service_due),
                        ("hu_reminder", v.next_inspection),
                    ] {
                        let Some(due) = due.filter(|d| (from..=to).contains(d)) else {
                            continue;
                        };
                        if truth.service(service).is_none() {
                            continue;
                        }
                        let key = vehicle_key(d, &v.vin);
                        let visit = truth.organic_visit(service, key, due);
                        dues.push(Due {
                            dealer: d,
                            customer_no: v.customer_no.clone(),
                            vin: v.vin.clone(),
                            service: service.to_string(),
                            due,
                            key,
                            km0: v.last_service_km.unwrap_or(0),
                            day0: v.last_service_date.unwrap_or(from),
                            visit,
                            imported: false,
                            messaged: false,
                        });
                    }
                }
            }
        }
        // A vehicle may appear twice (a duplicate customer record with the
        // same VIN): the first one counts.
        let mut index = HashMap::new();
        let mut kept = Vec::with_capacity(dues.len());
        for due in dues {
            let k = (due.dealer, due.vin.clone(), due.service.clone());
            if let std::collections::hash_map::Entry::Vacant(e) = index.entry(k) {
                e.insert(kept.len());
                kept.push(due);
            }
        }
        Self {
            truth,
            dealers,
            dues: kept,
            index,
            evaluate_from,
        }
    }

    /// Takes in one message or control record: a message moves its
    /// recipient's visit as the model says; its worth against the oracle
    /// goes into `week`.
    pub fn take(&mut self, seen: &Seen, week: &mut WeekTally) {
        if seen.control {
            week.control += 1;
        } else {
            week.sent += 1;
        }
        for (service, vin, due_on) in &seen.occasions {
            let Some(vin) = vin else {
                week.unmodelled += 1;
                continue;
            };
            let Some(&i) = self.index.get(&(seen.dealer, vin.clone(), service.clone())) else {
                week.unmodelled += 1;
                continue;
            };
            if seen.control {
                continue;
            }
            let dealer = &self.dealers[seen.dealer];
            let d = &mut self.dues[i];
            if d.due != *due_on {
                // The planner found another due date than the model keeps.
                week.unmodelled += 1;
                continue;
            }
            if d.messaged || d.visit.is_some_and(|v| v <= seen.send_on) {
                // Already reminded, or already came: nothing changes.
                continue;
            }
            d.messaged = true;
            let m = Send {
                service,
                channel: seen.channel,
                due: *due_on,
                send_on: seen.send_on,
                send_at: seen.send_at,
                dealer,
                key: d.key,
            };
            d.visit = self.truth.visit_after(&m);
            if *due_on < self.evaluate_from {
                continue;
            }
            let w = self.worth(&m);
            week.evaluated += 1;
            week.run += w.run;
            week.oracle += w.oracle;
            if seen.explored {
                week.explored += 1;
                week.explored_run += w.run;
                week.explored_oracle += w.oracle;
            }
            *week
                .arms
                .entry(service.clone())
                .or_default()
                .entry((m.lead().max(0) as u32, Slot::of(m.send_on, m.send_at)))
                .or_default() += 1;
        }
    }

    /// What a message is worth by the model, and what the oracle's arm
    /// would have been worth for the same recipient and dealer.
    pub fn worth(&self, m: &Send) -> Worth {
        let f = self.truth.dealer_factor(m.dealer);
        let slot = Slot::of(m.send_on, m.send_at);
        let run = self
            .truth
            .expected_incremental(m.service, m.channel, m.lead(), slot, f);
        let oracle = self
            .truth
            .oracle(m.service, m.channel)
            .map(|o| {
                self.truth
                    .expected_incremental(m.service, m.channel, o.lead as i32, o.slot, f)
            })
            .unwrap_or(run);
        Worth { run, oracle }
    }

    /// The visits that happened before `day` and are not in an export yet,
    /// per dealer, marked as exported.
    pub fn visits_before(&mut self, day: Date) -> BTreeMap<usize, Vec<Visit>> {
        let mut out: BTreeMap<usize, Vec<Visit>> = BTreeMap::new();
        for d in &mut self.dues {
            let Some(v) = d.visit.filter(|&v| v < day && !d.imported) else {
                continue;
            };
            d.imported = true;
            let days = u32::try_from(v.days() - d.day0.days()).unwrap_or(0);
            out.entry(d.dealer).or_default().push(Visit {
                customer_no: d.customer_no.clone(),
                vin: d.vin.clone(),
                day: v,
                km: d.km0.saturating_add(days.saturating_mul(KM_PER_DAY)),
                kind: if d.service == "hu_reminder" {
                    "HU/AU"
                } else {
                    "Inspektion"
                },
            });
        }
        for rows in out.values_mut() {
            rows.sort_by(|a, b| (a.day, &a.vin).cmp(&(b.day, &b.vin)));
        }
        out
    }
}

/// One visit for a dealer's next visits export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Visit {
    pub customer_no: String,
    pub vin: String,
    pub day: Date,
    pub km: u32,
    pub kind: &'static str,
}

/// `yyyymm` of a day.
pub(crate) fn month_of(day: Date) -> u32 {
    let n = day.naive();
    chrono::Datelike::year(&n) as u32 * 100 + chrono::Datelike::month(&n)
}

/// The model's key of a vehicle: its dealer and VIN.
fn vehicle_key(dealer: usize, vin: &str) -> u64 {
    vin.bytes()
        .fold(0xcbf2_9ce4_8422_2325 ^ dealer as u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchpoint_datagen::truth::demo_services;

    fn day(y: i32, m: u32, d: u32) -> Date {
        Date::from_ymd(y, m, d).expect("date")
    }

    fn one_vehicle_world() -> World {
        let spec = &touchpoint_datagen::demo_dealers(1)[0];
        let opts = touchpoint_datagen::ExportOptions::clean(spec.dialect());
        let start = day(2027, 1, 4);
        let recs: Vec<Record> = touchpoint_datagen::records(spec, &opts, start).collect();
        World::new(
            Truth::new(1, &demo_services()),
            vec![spec.id.clone()],
            &[recs],
            start,
            start.add_days(400),
            start,
        )
    }

    #[test]
    fn a_message_is_worth_at_most_the_oracle_and_moves_only_its_vehicle() {
        let mut w = one_vehicle_world();
        assert!(!w.dues.is_empty());
        let i = w
            .dues
            .iter()
            .position(|d| d.service == "service_due")
            .expect("a service due");
        let d = w.dues[i].clone();
        let before: Vec<Option<Date>> = w.dues.iter().map(|d| d.visit).collect();
        let seen = Seen {
            dealer: 0,
            channel: Channel::Email,
            control: false,
            send_on: d.due.add_days(-21),
            send_at: 9 * 60,
            explored: false,
            occasions: vec![(d.service.clone(), Some(d.vin.clone()), d.due)],
        };
        let mut week = WeekTally::default();
        w.take(&seen, &mut week);
        assert_eq!((week.sent, week.evaluated, week.unmodelled), (1, 1, 0));
        assert!(
            week.run > 0.0 && week.run <= week.oracle + 1e-12,
            "{week:?}"
        );
        assert!(w.dues[i].messaged);
        for (j, v) in before.iter().enumerate() {
            if j != i {
                assert_eq!(w.dues[j].visit, *v);
            }
        }
        // A second message for the same occasion changes nothing.
        let visit = w.dues[i].visit;
        w.take(&seen, &mut week);
        assert_eq!(w.dues[i].visit, visit);
        assert_eq!(week.evaluated, 1);
        // A control record counts, moves nothing, is worth nothing.
        let mut week = WeekTally::default();
        w.take(
            &Seen {
                control: true,
                ..seen.clone()
            },
            &mut week,
        );
        assert_eq!((week.control, week.evaluated), (1, 0));
        // An occasion the model does not know is counted as such.
        w.take(
            &Seen {
                occasions: vec![("birthday".into(), None, d.due)],
                ..seen
            },
            &mut week,
        );
        assert_eq!(week.unmodelled, 1);
    }

    #[test]
    fn each_visit_is_exported_once_on_the_day_after_it() {
        let mut w = one_vehicle_world();
        let first = w
            .dues
            .iter()
            .filter_map(|d| d.visit)
            .min()
            .expect("a visit");
        assert!(w.visits_before(first).is_empty());
        let rows = w.visits_before(first.add_days(1));
        let n: usize = rows.values().map(Vec::len).sum();
        assert!(n >= 1);
        assert!(rows.values().flatten().all(|v| v.day == first));
        assert!(w.visits_before(first.add_days(1)).is_empty());
    }
}
