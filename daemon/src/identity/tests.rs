use std::sync::Arc;

use super::*;
use crate::store::Stores;
use touchpoint_common::config::StoresConfig;
use touchpoint_common::domain::{Address, ImportReport, Salutation};
use touchpoint_common::Date;
use touchpoint_common::TenantId;

// ----- helpers --------------------------------------------------------------------

struct World {
    _dir: tempfile::TempDir,
    stores: Stores,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = Stores::open(dir.path(), &StoresConfig::default()).expect("open stores");
        Self { _dir: dir, stores }
    }

    fn tenant(&self, id: &str) -> Arc<TenantStore> {
        let id = TenantId::new(id).expect("tenant id");
        self.stores
            .central()
            .register_tenant(&id, "Autohaus")
            .expect("register");
        self.stores.tenant(&id).expect("tenant store")
    }
}

fn report(store: &TenantStore, id: u64) -> ImportReport {
    ImportReport::new(
        id,
        store.id().clone(),
        "kunden.csv",
        format!("hash-{id}"),
        Timestamp(0),
    )
}

fn import(store: &TenantStore, customers: &[Customer], vehicles: &[Vehicle]) {
    let id = store.next_import_id().expect("import id");
    let mut tx = store.begin_import(id).expect("begin");
    for c in customers {
        tx.put_customer(c).expect("put customer");
    }
    for v in vehicles {
        tx.put_vehicle(v).expect("put vehicle");
    }
    tx.commit(&report(store, id)).expect("commit");
}

fn person(no: &str, first: &str, last: &str) -> Customer {
    Customer {
        customer_no: no.into(),
        first_name: first.into(),
        last_name: last.into(),
        language: "de".into(),
        ..Default::default()
    }
}

fn at(mut c: Customer, street: &str, house_no: &str, postcode: &str) -> Customer {
    c.address = Address {
        street: street.into(),
        house_no: house_no.into(),
        postcode: postcode.into(),
        city: "München".into(),
        country: "DE".into(),
    };
    c
}

fn mail(mut c: Customer, email: &str) -> Customer {
    c.email = Some(email.into());
    c
}

fn tel(mut c: Customer, phone: &str) -> Customer {
    c.phone = Some(phone.into());
    c
}

fn born(mut c: Customer, y: i32, m: u32, d: u32) -> Customer {
    c.birth_date = Date::from_ymd(y, m, d);
    c
}

fn company(no: &str, name: &str, postcode: &str) -> Customer {
    Customer {
        customer_no: no.into(),
        salutation: Salutation::Company,
        company: Some(name.into()),
        is_company: true,
        address: Address {
            street: "Industriestraße".into(),
            house_no: "1".into(),
            postcode: postcode.into(),
            city: "München".into(),
            country: "DE".into(),
        },
        language: "de".into(),
        ..Default::default()
    }
}

fn vehicle(vin: &str, owner: &str) -> Vehicle {
    Vehicle {
        vin: vin.into(),
        customer_no: owner.into(),
        model: "Fjord".into(),
        ..Default::default()
    }
}

fn pass(store: &TenantStore) -> Vec<MergeRecord> {
    find_and_merge(store, None).expect("identity pass")
}

fn pairs(merges: &[MergeRecord]) -> Vec<(String, String)> {
    let mut p: Vec<_> = merges
        .iter()
        .map(|m| (m.merged.clone(), m.survivor.clone()))
        .collect();
    p.sort();
    p
}

fn pair(merged: &str, survivor: &str) -> (String, String) {
    (merged.to_string(), survivor.to_string())
}

// ----- normalisation -----------------------------------------------------------------

#[test]
fn names_fold_german_spellings_and_diacritics() {
    use normalize::name;
    assert_eq!(name("Müller"), "mueller");
    assert_eq!(name("Mueller"), "mueller");
    assert_eq!(name("MÜLLER"), "mueller");
    assert_eq!(name("Mu\u{308}ller"), "mueller", "decomposed umlaut");
    assert_eq!(name("Weiß"), name("Weiss"));
    assert_eq!(name("Öztürk"), "oeztuerk");
    assert_eq!(name("René"), "rene");
    assert_eq!(name("  Hans-Peter  "), "hans peter");
    assert_eq!(name("O'Brien"), "obrien");
    assert_eq!(name("Dr. Hans"), "hans");
    assert_eq!(
        name("Frau"),
        "frau",
        "noise words stay when they are all there is"
    );
    assert_ne!(name("Müller"), name("Muller"));
}

#[test]
fn streets_and_house_numbers_have_one_key_per_spelling() {
    use normalize::{house_no, street};
    let key = street("Hauptstraße");
    for s in [
        "Hauptstrasse",
        "Hauptstr.",
        "Haupt-Str",
        "Haupt Straße",
        "HAUPTSTR",
    ] {
        assert_eq!(street(s), key, "{s}");
    }
    assert_eq!(key, "hauptstr");
    assert_eq!(street("Marktplatz"), street("Marktpl."));
    assert_ne!(street("Hauptstraße"), street("Hauptweg"));
    for h in ["12 a", "12a", "12A", " 12 A "] {
        assert_eq!(house_no(h), "12a", "{h}");
    }
    assert_eq!(house_no("12-14"), "12-14");
    assert_eq!(house_no("12 - 14"), "12-14");
    assert_ne!(house_no("12"), house_no("12a"));
}

#[test]
fn emails_are_trimmed_and_lowercased_only() {
    use normalize::email;
    assert_eq!(
        email("  Hans.Mueller@Example.DE "),
        Some("hans.mueller@example.de".into())
    );
    assert_eq!(
        email("hans+auto@example.de"),
        Some("hans+auto@example.de".into())
    );
    assert_ne!(
        email("hans.mueller@gmail.com"),
        email("hansmueller@gmail.com")
    );
    assert_eq!(email(""), None);
    assert_eq!(email("kein email"), None);
    assert_eq!(email("@example.de"), None);
}

#[test]
fn phones_get_the_german_country_code() {
    use normalize::phone;
    let key = phone("+49 89 123");
    assert_eq!(key, Some("4989123".into()));
    for p in [
        "089-123",
        "089 123",
        "(089) 123",
        "0049 89 123",
        "+49 (0)89 123",
        "+49089123",
    ] {
        assert_eq!(phone(p), key, "{p}");
    }
    assert_eq!(phone("+43 1 234567"), Some("431234567".into()));
    assert_ne!(phone("+43 1 234567"), phone("01 234567"));
    assert_eq!(phone("123456"), None, "no area code");
    assert_eq!(phone("0000000"), None, "placeholder");
    assert_eq!(phone("089"), None, "fragment");
    assert_eq!(phone(""), None);
}

#[test]
fn companies_lose_their_legal_form() {
    use normalize::company;
    let key = company("Autohaus Müller GmbH");
    assert_eq!(key, "autohaus mueller");
    for c in [
        "Autohaus Mueller",
        "Autohaus Müller GmbH & Co. KG",
        "Autohaus Müller AG",
        "Autohaus Müller KG",
        "Autohaus Müller OHG",
        "Autohaus Müller e.K.",
        "Autohaus Müller GbR",
        "Autohaus Müller UG (haftungsbeschränkt)",
        "Autohaus Müller e.V.",
        "AUTOHAUS MÜLLER gmbh",
    ] {
        assert_eq!(company(c), key, "{c}");
    }
    assert_eq!(company("GmbH"), "gmbh", "never the whole name");
    assert_ne!(
        company("Autohaus Müller GmbH"),
        company("Autohaus Meier GmbH")
    );
}

#[test]
fn resolve_follows_chains_and_survives_cycles() {
    let map: HashMap<String, String> = [("A", "B"), ("B", "C"), ("X", "Y"), ("Y", "Z"), ("Z", "X")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(resolve(&map, "A"), "C");
    assert_eq!(resolve(&map, "B"), "C");
    assert_eq!(resolve(&map, "C"), "C");
    assert_eq!(resolve(&map, "Q"), "Q");
    assert_eq!(resolve(&map, "X"), "X");
    assert_eq!(resolve(&map, "Y"), "X");
    assert_eq!(resolve(&map, "Z"), "X");
}

// ----- match rules -------------------------------------------------------------------

#[test]
fn same_email_and_compatible_names_merge() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            mail(person("K1", "Hans", "Müller"), "hans.mueller@example.de"),
            mail(person("K2", "Hans", "Mueller"), " Hans.Mueller@Example.de"),
            mail(person("K3", "H.", "Müller"), "hans.mueller@example.de"),
            mail(person("K4", "Jörg", "Meier"), "j.meier@example.de"),
            mail(person("K5", "Jörg", "Meyer"), "j.meier@example.de"),
        ],
        &[],
    );
    let merges = pass(&s);
    assert_eq!(
        pairs(&merges),
        vec![pair("K2", "K1"), pair("K3", "K1"), pair("K5", "K4")]
    );
    for m in &merges {
        assert!(
            matches!(m.reasons[0], MatchReason::SameEmail(_)),
            "{:?}",
            m.reasons
        );
        assert_eq!(m.import_id, None);
        assert!(m.merge_id > 0);
    }
}

#[test]
fn a_family_sharing_an_email_is_not_merged() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            at(
                mail(person("K1", "Hans", "Müller"), "familie.mueller@example.de"),
                "Hauptstr.",
                "1",
                "80331",
            ),
            at(
                mail(
                    person("K2", "Petra", "Müller"),
                    "familie.mueller@example.de",
                ),
                "Hauptstr.",
                "1",
                "80331",
            ),
            at(
                mail(person("K3", "Paul", "Müller"), "familie.mueller@example.de"),
                "Hauptstr.",
                "1",
                "80331",
            ),
            at(
                mail(
                    person("K4", "Paula", "Müller"),
                    "familie.mueller@example.de",
                ),
                "Hauptstr.",
                "1",
                "80331",
            ),
            mail(person("K5", "Jan", "Schmidt"), "js@example.de"),
            mail(person("K6", "Julia", "Schmidt"), "js@example.de"),
            mail(person("K7", "Otto", "Weber"), "weber@example.de"),
            mail(person("K8", "Erna", "Schulz"), "weber@example.de"),
        ],
        &[],
    );
    assert!(pass(&s).is_empty());
}

#[test]
fn same_phone_and_compatible_names_merge_otherwise_not() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            tel(person("K1", "Anna", "Weiß"), "+49 89 1234567"),
            tel(person("K2", "Anna", "Weiss"), "089/123 45 67"),
            tel(person("K3", "Bernd", "Weiß"), "089-1234567"),
            tel(person("K4", "Carla", "Vogel"), "0049 30 555555"),
        ],
        &[],
    );
    let merges = pass(&s);
    assert_eq!(pairs(&merges), vec![pair("K2", "K1")]);
    assert_eq!(
        merges[0].reasons,
        vec![MatchReason::SamePhone("49891234567".into())]
    );
}

#[test]
fn same_name_and_address_merge_across_spellings() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            at(
                person("K1", "Jürgen", "Weiß"),
                "Hauptstraße",
                "12 a",
                "80331",
            ),
            at(
                person("K2", "Juergen", "Weiss"),
                "Hauptstr.",
                "12A",
                "80331",
            ),
            // Same name, another house, another postcode: other people.
            at(person("K3", "Jürgen", "Weiß"), "Hauptstraße", "14", "80331"),
            at(
                person("K4", "Jürgen", "Weiß"),
                "Hauptstraße",
                "12a",
                "10115",
            ),
        ],
        &[],
    );
    let merges = pass(&s);
    assert_eq!(pairs(&merges), vec![pair("K2", "K1")]);
    assert_eq!(
        merges[0].reasons,
        vec![MatchReason::SameNameAndAddress {
            name: "juergen weiss".into(),
            address: "80331 hauptstr 12a".into()
        }]
    );
}

#[test]
fn similar_names_at_the_same_address_merge() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            at(
                person("K1", "Michael", "Schneider"),
                "Lindenweg",
                "3",
                "80331",
            ),
            at(
                person("K2", "Micheal", "Schnieder"),
                "Lindenweg",
                "3",
                "80331",
            ),
            at(person("K3", "Thomas", "Becker"), "Ahornweg", "5", "80331"),
            at(person("K4", "Thomas", "Bäcker"), "Ahornweg", "5", "80331"),
            // Same typo-distance, different address.
            at(
                person("K5", "Michael", "Schnieder"),
                "Lindenweg",
                "5",
                "80331",
            ),
        ],
        &[],
    );
    let merges = pass(&s);
    assert_eq!(pairs(&merges), vec![pair("K2", "K1"), pair("K4", "K3")]);
    let m = merges.iter().find(|m| m.merged == "K2").expect("K2 merged");
    assert_eq!(
        m.reasons,
        vec![MatchReason::SimilarNameSameAddress {
            a: "michael schneider".into(),
            b: "micheal schnieder".into(),
            distance: 2,
            address: "80331 lindenweg 3".into(),
        }]
    );
}

#[test]
fn family_members_with_close_names_at_one_address_stay_apart() {
    let w = World::new();
    let s = w.tenant("d001");
    let home = |c| at(c, "Birkenweg", "7", "80331");
    let mut jan = person("K5", "Jan", "Lorenz");
    jan.salutation = Salutation::Mr;
    let mut jana = person("K6", "Jana", "Lorenz");
    jana.salutation = Salutation::Ms;
    import(
        &s,
        &[
            home(person("K1", "Paul", "Hoffmann")),
            home(person("K2", "Paula", "Hoffmann")),
            home(person("K3", "Hans", "Hoffmann")),
            home(person("K4", "Hanna", "Hoffmann")),
            home(jan),
            home(jana),
            home(person("K7", "Maria", "Hoffmann")),
            home(person("K8", "Marie", "Hoffmann")),
            // Too short to call a typo.
            home(person("K9", "Jo", "Ott")),
            home(person("KA", "Jo", "Orr")),
        ],
        &[],
    );
    let m = pass(&s);
    assert!(m.is_empty(), "{m:?}");
}

#[test]
fn different_birth_dates_are_never_merged() {
    let w = World::new();
    let s = w.tenant("d001");
    let hans = |no| {
        at(
            mail(person(no, "Hans", "Müller"), "hm@example.de"),
            "Hauptstr.",
            "1",
            "80331",
        )
    };
    import(
        &s,
        &[
            born(hans("K1"), 1950, 3, 1),
            born(hans("K2"), 1980, 7, 9),
            born(hans("K3"), 1980, 7, 9),
        ],
        &[],
    );
    // Senior and junior stay apart; the junior's duplicate joins the junior.
    assert_eq!(pairs(&pass(&s)), vec![pair("K3", "K2")]);
}

#[test]
fn a_chain_does_not_join_two_birth_dates() {
    let w = World::new();
    let s = w.tenant("d001");
    // K2 (no birth date) matches both; only one of them may have it.
    import(
        &s,
        &[
            born(
                at(person("K1", "Hans", "Müller"), "Hauptstr.", "1", "80331"),
                1950,
                3,
                1,
            ),
            at(
                mail(person("K2", "Hans", "Müller"), "hm@example.de"),
                "Hauptstr.",
                "1",
                "80331",
            ),
            born(
                mail(person("K3", "Hans", "Müller"), "hm@example.de"),
                1980,
                7,
                9,
            ),
        ],
        &[],
    );
    let merges = pass(&s);
    // Name and address is the stronger evidence and is applied first.
    assert_eq!(pairs(&merges), vec![pair("K2", "K1")]);
}

#[test]
fn companies_merge_on_name_and_postcode_only() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            company("F1", "Autohaus Müller GmbH", "80331"),
            company("F2", "Autohaus Mueller GmbH & Co. KG", "80331"),
            company("F3", "Autohaus Müller GmbH", "10115"),
            company("F4", "Autohaus Meier GmbH", "80331"),
        ],
        &[],
    );
    let merges = pass(&s);
    assert_eq!(pairs(&merges), vec![pair("F2", "F1")]);
    assert_eq!(
        merges[0].reasons,
        vec![MatchReason::SameCompany("autohaus mueller".into())]
    );
}

#[test]
fn a_company_is_never_merged_with_a_person() {
    let w = World::new();
    let s = w.tenant("d001");
    let mut firm = mail(company("F1", "Müller", "80331"), "info@mueller.de");
    firm.last_name = "Müller".into();
    firm.address.street = "Hauptstr.".into();
    let mut owner = at(
        mail(person("K1", "", "Müller"), "info@mueller.de"),
        "Hauptstr.",
        "1",
        "80331",
    );
    owner.phone = firm.phone.clone();
    import(&s, &[firm, owner], &[]);
    assert!(pass(&s).is_empty());
}

#[test]
fn placeholder_emails_shared_by_many_are_ignored() {
    let w = World::new();
    let s = w.tenant("d001");
    let many: Vec<Customer> = (0..30)
        .map(|i| {
            mail(
                person(&format!("K{i:02}"), "Hans", "Müller"),
                "keine@email.de",
            )
        })
        .collect();
    import(&s, &many, &[]);
    assert!(pass(&s).is_empty());
}

#[test]
fn a_crowded_address_still_merges_the_same_name() {
    let w = World::new();
    let s = w.tenant("d001");
    let mut many: Vec<Customer> = (0..150)
        .map(|i| {
            at(
                person(&format!("K{i:03}"), "Anna", &format!("Bewohner{i}")),
                "Hochhausring",
                "1",
                "80331",
            )
        })
        .collect();
    many.push(at(
        person("K999", "Anna", "Bewohner7"),
        "Hochhausring",
        "1",
        "80331",
    ));
    import(&s, &many, &[]);
    assert_eq!(pairs(&pass(&s)), vec![pair("K999", "K007")]);
}

// ----- clusters, chains, idempotence, undo ---------------------------------------------

#[test]
fn a_cluster_of_three_merges_into_the_most_complete_member() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            // K1 and K2 share an email; K2 and K3 share name and address.
            mail(person("K1", "Hans", "Müller"), "hm@example.de"),
            at(
                mail(person("K2", "Hans", "Mueller"), "hm@example.de"),
                "Hauptstr.",
                "1",
                "80331",
            ),
            tel(
                at(
                    born(person("K3", "Hans", "Müller"), 1970, 1, 2),
                    "Hauptstraße",
                    "1",
                    "80331",
                ),
                "089 123456",
            ),
        ],
        &[],
    );
    let merges = pass(&s);
    assert_eq!(pairs(&merges), vec![pair("K1", "K3"), pair("K2", "K3")]);
    let k1 = merges.iter().find(|m| m.merged == "K1").expect("K1 merged");
    // K1 reaches K3 through K2: both matches explain it.
    assert!(
        k1.reasons
            .iter()
            .any(|r| matches!(r, MatchReason::SameEmail(_))),
        "{:?}",
        k1.reasons
    );
    assert!(
        k1.reasons
            .iter()
            .any(|r| matches!(r, MatchReason::SameNameAndAddress { .. })),
        "{:?}",
        k1.reasons
    );
    let ids: Vec<u64> = merges.iter().map(|m| m.merge_id).collect();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(s.stats().expect("stats").recipients, 1);
}

#[test]
fn ties_go_to_the_lowest_customer_number() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            mail(person("K3", "Hans", "Müller"), "hm@example.de"),
            mail(person("K1", "Hans", "Müller"), "hm@example.de"),
            mail(person("K2", "Hans", "Müller"), "hm@example.de"),
        ],
        &[],
    );
    assert_eq!(pairs(&pass(&s)), vec![pair("K2", "K1"), pair("K3", "K1")]);
}

#[test]
fn a_second_pass_makes_no_new_merges() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            mail(person("K1", "Hans", "Müller"), "hm@example.de"),
            mail(person("K2", "Hans", "Mueller"), "hm@example.de"),
            company("F1", "Autohaus Müller GmbH", "80331"),
            company("F2", "Autohaus Müller AG", "80331"),
        ],
        &[],
    );
    assert_eq!(pass(&s).len(), 2);
    assert!(pass(&s).is_empty());
    assert_eq!(s.merges(false).expect("merges").len(), 2);
}

#[test]
fn a_later_duplicate_extends_an_existing_merge_as_a_chain() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            mail(person("K1", "Hans", "Müller"), "hm@example.de"),
            mail(person("K2", "Hans", "Müller"), "hm@example.de"),
        ],
        &[vehicle("VIN0000000000000B", "K2")],
    );
    assert_eq!(pairs(&pass(&s)), vec![pair("K2", "K1")]);

    // A more complete record of the same man arrives: it survives, and the
    // existing merge K2 → K1 stays as it is (K2 → K1 → K0).
    let k0 = born(
        tel(
            at(
                mail(person("K0", "Hans", "Müller"), "hm@example.de"),
                "Hauptstr.",
                "1",
                "80331",
            ),
            "089 123456",
        ),
        1970,
        1,
        2,
    );
    import(&s, &[k0], &[vehicle("VIN0000000000000A", "K0")]);
    let id = 7;
    let merges = find_and_merge(&s, Some(id)).expect("pass");
    assert_eq!(pairs(&merges), vec![pair("K1", "K0")]);
    assert_eq!(merges[0].import_id, Some(id));

    let map = s.merge_map().expect("map");
    assert_eq!(resolve(&map, "K2"), "K0");
    let r = recipients(&s).expect("recipients");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].members, vec!["K0", "K1", "K2"]);
    assert_eq!(r[0].vehicles.len(), 2);
    assert!(pass(&s).is_empty());
}

#[test]
fn an_undone_merge_is_not_made_again() {
    let w = World::new();
    let s = w.tenant("d001");
    import(
        &s,
        &[
            mail(person("K1", "Hans", "Müller"), "hm@example.de"),
            mail(person("K2", "Hans", "Müller"), "hm@example.de"),
            mail(person("K3", "Erika", "Muster"), "em@example.de"),
            mail(person("K4", "Erika", "Muster"), "em@example.de"),
        ],
        &[],
    );
    let merges = pass(&s);
    assert_eq!(merges.len(), 2);
    let hans = merges.iter().find(|m| m.survivor == "K1").expect("hans");
    let undone = undo(&s, hans.merge_id, "operator").expect("undo");
    assert_eq!(undone.undone_by.as_deref(), Some("operator"));
    assert!(matches!(
        undo(&s, hans.merge_id, "operator"),
        Err(IdentityError::Store(StoreError::Conflict(_)))
    ));

    assert!(pass(&s).is_empty(), "the undone pair stays apart");
    // Nor through a third record matching both.
    import(
        &s,
        &[mail(person("K0", "Hans", "Müller"), "hm@example.de")],
        &[],
    );
    let merges = pass(&s);
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert_eq!(merges[0].survivor, "K0");
    let map = s.merge_map().expect("map");
    assert_ne!(resolve(&map, "K1"), resolve(&map, "K2"));
    assert_eq!(s.merges(false).expect("active").len(), 2);
    assert!(pass(&s).is_empty());
}

// ----- recipients ----------------------------------------------------------------------

#[test]
fn a_fleet_is_one_recipient_with_all_its_vehicles() {
    let w = World::new();
    let s = w.tenant("d001");
    let vehicles: Vec<Vehicle> = (0..40)
        .map(|i| vehicle(&format!("WFLEET{i:011}"), "F1"))
        .collect();
    import(
        &s,
        &[
            company("F1", "Spedition Schnell GmbH", "80331"),
            person("K1", "Eva", "Einzel"),
        ],
        &vehicles,
    );
    let r = recipients(&s).expect("recipients");
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].members, vec!["F1"]);
    assert_eq!(r[0].vehicles.len(), 40);
    assert!(r[1].vehicles.is_empty());
}

#[test]
fn merged_customers_vehicles_and_contact_data_join_the_survivor() {
    let w = World::new();
    let s = w.tenant("d001");
    let full = born(
        tel(
            at(
                mail(person("K1", "Hans", "Müller"), "hm@example.de"),
                "Hauptstr.",
                "1",
                "80331",
            ),
            "089 1",
        ),
        1970,
        1,
        2,
    );
    let mut survivor = full.clone();
    survivor.phone = None;
    let mut dup = at(person("K2", "Hans", "Mueller"), "Hauptstraße", "1", "80331");
    dup.phone = Some("089 7654321".into());
    import(
        &s,
        &[survivor, dup],
        &[
            vehicle("VIN00000000000001", "K1"),
            vehicle("VIN00000000000002", "K2"),
            vehicle("VIN00000000000003", "K2"),
        ],
    );
    assert_eq!(pairs(&pass(&s)), vec![pair("K2", "K1")]);
    let r = recipients(&s).expect("recipients");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].members, vec!["K1", "K2"]);
    assert_eq!(r[0].customer.customer_no, "K1");
    assert_eq!(r[0].customer.email.as_deref(), Some("hm@example.de"));
    assert_eq!(
        r[0].customer.phone.as_deref(),
        Some("089 7654321"),
        "filled from the merged member"
    );
    let vins: Vec<&str> = r[0].vehicles.iter().map(|v| v.vin.as_str()).collect();
    assert_eq!(
        vins,
        vec![
            "VIN00000000000001",
            "VIN00000000000002",
            "VIN00000000000003"
        ]
    );

    // After an undo the member is a recipient of its own again.
    let id = s.merges(false).expect("merges")[0].merge_id;
    undo(&s, id, "op").expect("undo");
    let r = recipients(&s).expect("recipients");
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].vehicles.len(), 2);
}

#[test]
fn tenants_are_never_merged_across() {
    let w = World::new();
    let a = w.tenant("d001");
    let b = w.tenant("d002");
    let hans = |no| {
        at(
            mail(person(no, "Hans", "Müller"), "hm@example.de"),
            "Hauptstr.",
            "1",
            "80331",
        )
    };
    import(&a, &[hans("K1")], &[]);
    import(&b, &[hans("K1"), hans("K9")], &[]);
    assert!(pass(&a).is_empty());
    assert_eq!(pairs(&pass(&b)), vec![pair("K9", "K1")]);
    assert!(a.merges(true).expect("merges").is_empty());
    assert_eq!(recipients(&a).expect("recipients").len(), 1);
}

// ----- performance ---------------------------------------------------------------------

/// `cargo test --release -p touchpoint-daemon --lib identity::tests::a_million -- --ignored --nocapture`
#[test]
#[ignore = "slow: imports a million customers"]
fn a_million_customers_in_seconds() {
    const N: usize = 1_000_000;
    let w = World::new();
    let s = w.tenant("d001");
    let firsts = [
        "Hans", "Petra", "Jürgen", "Anna", "Michael", "Sabine", "Thomas", "Ursula", "Stefan",
        "Monika",
    ];
    let lasts = [
        "Müller",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Weber",
        "Meyer",
        "Wagner",
        "Becker",
        "Schulz",
        "Hoffmann",
    ];
    let streets = [
        "Hauptstraße",
        "Bahnhofstr.",
        "Lindenweg",
        "Gartenstraße",
        "Schulstr.",
        "Kirchplatz",
    ];
    let mut rng = fastrand_like(42);
    let mut customers = Vec::with_capacity(N);
    let mut originals = 0usize;
    while customers.len() < N {
        let i = originals;
        originals += 1;
        let first = firsts[(rng() % 10) as usize];
        let last = format!("{}{}", lasts[(rng() % 10) as usize], i % 5000);
        let mut c = at(
            person(&format!("K{:08}", customers.len()), first, &last),
            streets[(rng() % 6) as usize],
            &format!("{}", 1 + rng() % 120),
            &format!("{:05}", 10000 + rng() % 89000),
        );
        if rng() % 3 > 0 {
            c.email = Some(format!("{}.{}{}@example.de", first, last, i).to_lowercase());
        }
        if rng() % 2 == 0 {
            c.phone = Some(format!("089 {}", 1_000_000 + i));
        }
        let dup = rng() % 20 == 0;
        customers.push(c.clone());
        if dup && customers.len() < N {
            // 5 %: the same person again, spelt differently.
            let mut d = c;
            d.customer_no = format!("K{:08}", customers.len());
            d.address.street = d.address.street.replace("straße", "str.");
            d.email = d.email.map(|e| e.to_uppercase());
            customers.push(d);
        }
    }
    let t = Instant::now();
    for chunk in customers.chunks(250_000) {
        import(&s, chunk, &[]);
    }
    eprintln!(
        "imported {N} customers in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    drop(customers);

    let t = Instant::now();
    let merges = pass(&s);
    let first = t.elapsed();
    let t = Instant::now();
    let again = pass(&s);
    let second = t.elapsed();
    let t = Instant::now();
    let r = recipients(&s).expect("recipients");
    let rec = t.elapsed();
    eprintln!(
        "identity pass over {N} customers: {:.2}s ({} merges); second pass {:.2}s ({} merges); recipients {:.2}s ({})",
        first.as_secs_f64(),
        merges.len(),
        second.as_secs_f64(),
        again.len(),
        rec.as_secs_f64(),
        r.len()
    );
    assert!(again.is_empty());
    assert_eq!(r.len(), N - merges.len());
    assert!(first.as_secs() < 30, "far too slow: {first:?}");
}

/// A small deterministic generator (xorshift), so the test needs no crate.
fn fastrand_like(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
