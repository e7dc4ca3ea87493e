//! Builders for the test data several capabilities' tests share (compiled
//! for tests only). One customer, Anna Berg of Lindenstraße 4 in München,
//! is the default; each test adds what it is about.

use touchpoint_common::domain::{Address, Customer};

/// A customer being built; [`person`] starts one.
#[derive(Clone, Debug)]
pub(crate) struct Person(Customer);

/// Anna Berg, Lindenstraße 4, 80807 München, customer number `no`, no
/// email or phone yet.
pub(crate) fn person(no: &str) -> Person {
    Person(Customer {
        customer_no: no.into(),
        first_name: "Anna".into(),
        last_name: "Berg".into(),
        address: Address {
            street: "Lindenstraße".into(),
            house_no: "4".into(),
            postcode: "80807".into(),
            city: "München".into(),
            country: "DE".into(),
        },
        language: "de".into(),
        ..Customer::default()
    })
}

impl Person {
    /// The address `<no>@example.org` (the number in lower case).
    pub(crate) fn email(mut self) -> Self {
        self.0.email = Some(format!("{}@example.org", self.0.customer_no.to_lowercase()));
        self
    }

    pub(crate) fn phone(mut self) -> Self {
        self.0.phone = Some("+49 89 1234567".into());
        self
    }

    /// A company instead of a person (no first or last name).
    pub(crate) fn company(mut self, name: &str) -> Self {
        self.0.company = Some(name.into());
        self.0.is_company = true;
        self.0.first_name = String::new();
        self.0.last_name = String::new();
        self
    }

    pub(crate) fn build(self) -> Customer {
        self.0
    }
}

/// The stores in `dir` with one tenant, `d001` ("Autohaus Test"),
/// registered, and its store.
pub(crate) fn one_tenant(
    dir: &std::path::Path,
) -> (
    crate::store::Stores,
    std::sync::Arc<crate::store::TenantStore>,
) {
    let stores =
        crate::store::Stores::open(dir, &touchpoint_common::config::StoresConfig::default())
            .expect("open stores");
    let id = touchpoint_common::TenantId::new("d001").expect("tenant id");
    stores
        .central()
        .register_tenant(&id, "Autohaus Test")
        .expect("register");
    let store = stores.tenant(&id).expect("tenant store");
    (stores, store)
}
