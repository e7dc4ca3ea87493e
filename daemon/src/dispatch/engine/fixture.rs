//! The world the dispatcher's unit tests run in: a real temp-dir store
//! with the shipped brand and two of its dealers, d001 (email and post) and
//! d003 (also phone), and a subsidy of 50 % on `service_due`. The tests
//! next to each step drive the engine's private steps (release, claim,
//! record, requeue, batches, actions) one by one.
//!
//! Transport outcomes are handed to `record_and_flush` as the relay would
//! report them; times the engine takes from the clock are bracketed by
//! readings before and after, and later steps are driven at explicit times
//! (`claim` takes `now`), so nothing waits.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use touchpoint_common::config::{DispatchConfig, StoresConfig};
use touchpoint_common::domain::{Channel, Consent, Customer, ImportReport, Timestamp, Vehicle};
use touchpoint_common::outbox::{month_of, LedgerEntry, Occasion};
use touchpoint_common::policy::OccasionKind;
use touchpoint_common::protocol::MessageAction;

use super::*;
use crate::store::{LedgerDelta, PlanWrite};

pub(crate) const VIN_A: &str = "WNW1234567890ABCD";
pub(crate) const VIN_B: &str = "WNW9876543210WXYZ";

pub(crate) fn tid(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

pub(crate) fn now() -> i64 {
    Timestamp::now().0
}

pub(crate) fn today() -> Date {
    today_local(now())
}

/// `d` minus `n` calendar months.
pub(super) fn months_before(d: Date, n: u32) -> Date {
    Date::from(d.naive() - chrono::Months::new(n))
}

/// The shipped policies with only d001 and d003, and the brand paying half
/// of `service_due` at any date.
pub(super) fn write_policies(to: &Path) {
    let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"));
    std::fs::create_dir_all(to.join("dealers")).unwrap();
    std::fs::create_dir_all(to.join("templates")).unwrap();
    let mut brand = std::fs::read_to_string(shipped.join("brand.toml")).unwrap();
    brand.push_str(
        "\n[[subsidies]]\nservice = \"service_due\"\npercent = 50\nfrom = 2000-01-01\nto = 2099-12-31\n",
    );
    std::fs::write(to.join("brand.toml"), brand).unwrap();
    for t in ["d001", "d003"] {
        let f = format!("dealers/{t}.toml");
        std::fs::copy(shipped.join(&f), to.join(&f)).unwrap();
    }
    for e in std::fs::read_dir(shipped.join("templates")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join("templates").join(e.file_name())).unwrap();
    }
}

pub(crate) struct Fx {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) stores: Arc<Stores>,
    pub(crate) policies: Arc<PolicyHandle>,
    pub(crate) d: Dispatcher,
}

impl Fx {
    pub(crate) fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        write_policies(&dir.path().join("policies"));
        let loaded = crate::policy::load_dir(&dir.path().join("policies"))
            .unwrap_or_else(|e| panic!("test policies: {e:?}"));
        let policies = Arc::new(PolicyHandle::new(loaded));
        let stores =
            Arc::new(Stores::open(&dir.path().join("state"), &StoresConfig::default()).unwrap());
        for t in ["d001", "d003"] {
            stores.central().register_tenant(&tid(t), t).unwrap();
        }
        let mut cfg = DispatchConfig::default();
        cfg.smtp.host = String::new();
        let paths = DispatchPaths {
            spool: dir.path().join("mail"),
            letters: dir.path().join("letters"),
            calls: dir.path().join("calls"),
            secret: dir.path().join("dispatch.key"),
            bounce_maildir: Some(dir.path().join("bounces")),
            batch_at: 0,
        };
        let d = Dispatcher::new(stores.clone(), policies.clone(), &cfg, paths).unwrap();
        Fx {
            dir,
            stores,
            policies,
            d,
        }
    }

    pub(crate) fn p(&self) -> Arc<Policies> {
        self.policies.current()
    }

    /// A dispatcher as a daemon started again on the same state would have.
    pub(super) fn restarted(&self) -> Dispatcher {
        let mut cfg = DispatchConfig::default();
        cfg.smtp.host = String::new();
        Dispatcher::new(
            self.stores.clone(),
            self.policies.clone(),
            &cfg,
            self.d.paths.clone(),
        )
        .unwrap()
    }

    pub(crate) fn store(&self, t: &str) -> Arc<TenantStore> {
        self.stores.tenant(&tid(t)).unwrap()
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(super) fn import(
        &self,
        t: &str,
        customers: &[Customer],
        vehicles: &[Vehicle],
        consents: &[Consent],
    ) {
        let store = self.store(t);
        let id = store.next_import_id().unwrap();
        let mut tx = store.begin_import(id).unwrap();
        for c in customers {
            tx.put_customer(c).unwrap();
        }
        for v in vehicles {
            tx.put_vehicle(v).unwrap();
        }
        for c in consents {
            tx.put_consent(c).unwrap();
        }
        let report =
            ImportReport::new(id, tid(t), "kunden.csv", format!("hash-{id}"), Timestamp(0));
        tx.commit(&report).unwrap();
    }

    pub(crate) fn message(&self, t: &str, id: u64) -> Message {
        self.store(t).message(id).unwrap().unwrap()
    }

    /// Writes a message as a planning run would (reserving its cost).
    pub(crate) fn put(&self, t: &str, m: &Message) {
        self.store(t)
            .commit_plan(&PlanWrite {
                new: std::slice::from_ref(m),
                revised: &[],
                stamp: 0,
            })
            .unwrap();
    }

    /// Releases what is due now (as the next round would, without waiting
    /// for the release interval).
    pub(super) fn release_due(&self, t: &str) {
        self.d.wake(Some(&tid(t)));
        self.d
            .release_due(&self.store(t), &self.p(), now())
            .unwrap();
    }

    /// Writes `m` and releases it: it is queued.
    pub(crate) fn queued(&self, t: &str, m: &Message) -> Message {
        self.put(t, m);
        self.release_due(t);
        let q = self.message(t, m.id);
        assert_eq!(q.status, S::Queued, "{:?}", q.history);
        q
    }

    /// A service reminder email to `who` about `vin`, due today, queued.
    pub(crate) fn queued_email(&self, t: &str, who: &str, vin: &str) -> Message {
        let m = draft(
            &self.store(t),
            who,
            Channel::Email,
            "service_due",
            Some(vin),
            today(),
        );
        self.queued(t, &m)
    }

    /// Takes every send slot of `domain` for tenant `t`, as emails in
    /// flight would; returns how many there were.
    pub(crate) fn fill_domain(&self, t: &str, domain: &str) -> usize {
        let t = tid(t);
        let mut taken = 0;
        while self.d.state().throttles.take(&t, domain, now()).is_ok() {
            taken += 1;
            assert!(taken < 10_000, "{domain} has a limit");
        }
        taken
    }

    /// Moves a stored message to `after` as the engine would (indexes follow).
    pub(crate) fn rewrite(&self, t: &str, after: Message) {
        let store = self.store(t);
        let before = store.message(after.id).unwrap().unwrap();
        store.apply(&[Change::new(before, after)]).unwrap();
    }

    /// Writes `bytes` as message `id` of tenant `t` with sled directly, as no
    /// writer of ours would (a record of a build that stored what it could not
    /// read back): the store is closed first, and opened again after.
    pub(crate) fn plant_raw_message(&self, t: &str, id: u64, bytes: &[u8]) {
        self.stores.close_idle(std::time::Duration::ZERO);
        let path = self.path("state/tenants").join(t).join("store");
        // The segment size a tenant store is made with (store/db.rs): sled
        // opens a database only with the one it was made with.
        let db = sled::Config::new()
            .path(&path)
            .segment_size(128 * 1024)
            .open()
            .unwrap();
        db.open_tree("outbox")
            .unwrap()
            .insert(id.to_be_bytes(), bytes)
            .unwrap();
        db.flush().unwrap();
        drop(db);
        // sled's threads let go of its file lock a moment after the last
        // handle: the store opens again once the lock can be taken.
        let lock = path.join("db");
        loop {
            let file = std::fs::File::open(&lock).unwrap();
            use nix::fcntl::{Flock, FlockArg};
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(_released) => break,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err((_, e)) => panic!("{e}"),
            }
        }
    }

    pub(super) fn claim(&self, t: &str, at: i64, free: usize) -> Vec<Job> {
        self.d.claim(&self.store(t), &self.p(), at, free).unwrap()
    }

    /// [`Fx::claim`], as (message id, the email's text part) for tests
    /// outside the engine.
    pub(crate) fn claim_emails(&self, t: &str, at: i64, free: usize) -> Vec<(u64, String)> {
        self.claim(t, at, free)
            .iter()
            .map(|job| (job.id, email_text(job)))
            .collect()
    }

    pub(super) fn ledger(&self, t: &str, month: u32, service: &str) -> LedgerEntry {
        self.store(t).ledger_entry(month, service).unwrap()
    }

    pub(super) fn act(
        &self,
        t: &str,
        ids: &[u64],
        a: MessageAction,
    ) -> Vec<std::result::Result<S, String>> {
        self.d
            .apply_action(&tid(t), ids, a, "op")
            .unwrap()
            .into_iter()
            .map(|r| r.outcome)
            .collect()
    }

    /// The dealer's monthly budget for a service, cents.
    pub(super) fn budget(&self, t: &str, service: &str) -> i64 {
        self.p().tenant(&tid(t)).unwrap().services[service]
            .monthly_budget
            .0
    }

    /// `booked` cents of `service` already spent this month: a letter sent
    /// earlier, booked as dispatch books one.
    pub(super) fn spent(&self, t: &str, service: &str, booked: i64) {
        let store = self.store(t);
        let mut m = draft(&store, "K99", Channel::Post, service, None, today());
        m.status = S::Sent;
        m.dispatch.booked = booked;
        store
            .apply(&[Change {
                before: None,
                ledger: vec![(
                    month_of(today()),
                    service.to_string(),
                    LedgerDelta {
                        booked,
                        ..LedgerDelta::default()
                    },
                )],
                after: m,
                claim_occasions: false,
                free_occasions: false,
                sent_on: None,
                credit: None,
                tracking: None,
            }])
            .unwrap();
    }
}

pub(super) fn person(no: &str) -> Customer {
    crate::testkit::person(no).email().phone().build()
}

pub(super) fn said(no: &str, channel: Channel, granted: bool) -> Consent {
    Consent {
        customer_no: no.into(),
        channel,
        granted,
        source: "import:kunden.csv".into(),
        at: Timestamp::from_date(Date::from_ymd(2025, 1, 1).unwrap()),
    }
}

pub(super) fn car(vin: &str, owner: &str, serviced: Option<Date>) -> Vehicle {
    Vehicle {
        vin: vin.into(),
        customer_no: owner.into(),
        make: "Nordwagen".into(),
        model: "Fjord".into(),
        last_service_date: serviced,
        ..Vehicle::default()
    }
}

/// K1..: a person with email consent and a car.
pub(crate) fn customers(fx: &Fx, t: &str, nos: &[&str]) {
    let people: Vec<Customer> = nos.iter().map(|n| person(n)).collect();
    let cars: Vec<Vehicle> = nos
        .iter()
        .enumerate()
        .map(|(i, n)| car(if i == 0 { VIN_A } else { VIN_B }, n, None))
        .collect();
    let yes: Vec<Consent> = nos.iter().map(|n| said(n, Channel::Email, true)).collect();
    fx.import(t, &people, &cars, &yes);
}

/// A planned message as the planner writes it, due at midnight of `send_on`.
pub(crate) fn draft(
    store: &TenantStore,
    recipient: &str,
    channel: Channel,
    service: &str,
    vin: Option<&str>,
    send_on: Date,
) -> Message {
    let id = store.reserve_message_ids(1).unwrap();
    let cost = match channel {
        Channel::Email => 2,
        Channel::Post => 95,
        Channel::Phone => 250,
    };
    let kind = match service {
        "service_due" => OccasionKind::ServiceDue,
        "hu_reminder" => OccasionKind::InspectionDue,
        "quality_check" => OccasionKind::AfterVisit,
        "birthday" => OccasionKind::Birthday,
        _ => OccasionKind::Campaign,
    };
    Message {
        id,
        message_id: format!("<tp.{}.{id}@autohaus-mueller.example>", store.id()),
        recipient: recipient.into(),
        channel,
        service: service.into(),
        template: service.into(),
        occasions: vec![Occasion {
            key: format!("{service}:{}:{id}", vin.unwrap_or(recipient)),
            service: service.into(),
            kind,
            vin: vin.map(str::to_string),
            due: send_on.add_days(21),
            reason: "test occasion".into(),
            value: 3800,
        }],
        send_on,
        send_at: 0,
        cost,
        value: 3800,
        status: S::Planned,
        why: Vec::new(),
        planned_at: Timestamp::now(),
        policy: 0,
        history: vec![(Timestamp::now(), S::Planned, "planned".into())],
        dispatch: Default::default(),
    }
}

pub(super) fn outcome(job: &Job, delivery: Delivery) -> Outcome {
    Outcome {
        tenant: job.tenant.clone(),
        id: job.id,
        domain: job.domain.clone(),
        delivery,
        at: Timestamp::now().0,
        retried: false,
    }
}

pub(super) fn transient(text: &str) -> Delivery {
    Delivery::Transient {
        code: 451,
        message: text.into(),
    }
}

pub(super) fn statuses(m: &Message) -> Vec<S> {
    m.history.iter().map(|h| h.1).collect()
}

pub(crate) fn last_history(m: &Message) -> (S, &str) {
    let h = m.history.last().unwrap();
    (h.1, h.2.as_str())
}

pub(super) fn dispatch_whys(m: &Message) -> Vec<&str> {
    m.why
        .iter()
        .filter(|w| w.step == Step::Dispatch)
        .map(|w| w.text.as_str())
        .collect()
}

/// A far future: everything queued is due.
pub(super) const LATER: i64 = i64::MAX / 2;

/// The UTC day of a timestamp, as consent texts give it.
pub(super) fn today_of(t: Timestamp) -> Date {
    Date::from(
        chrono::DateTime::from_timestamp_millis(t.0)
            .unwrap()
            .date_naive(),
    )
}

/// The text part of a claimed email, decoded, with its lines ending in `\n`.
fn email_text(job: &Job) -> String {
    mail_parser::MessageParser::default()
        .parse(&job.outgoing.bytes)
        .unwrap()
        .body_text(0)
        .unwrap()
        .replace("\r\n", "\n")
}
