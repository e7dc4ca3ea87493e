//! The match keys of every customer of a tenant, held compactly.
//!
//! A pass over a million customers keeps six or seven keys per customer.
//! As separate `String`s that is millions of allocations to make and to
//! free again (freeing alone took half a second); here all key text sits in
//! one buffer and each customer is a fixed-size row of spans into it.

use std::hash::{BuildHasherDefault, Hasher};

use touchpoint_common::domain::{Customer, Salutation};
use touchpoint_common::Date;

use super::normalize;

/// The sex a salutation states, to keep "Herr Jan Müller" and "Frau Jana
/// Müller" apart however close the names are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sex {
    Unknown,
    Male,
    Female,
}

#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

struct Row {
    no: Span,
    first: Span,
    last: Span,
    email: Option<Span>,
    phone: Option<Span>,
    address: Option<Span>,
    postcode: Span,
    birth: Option<Date>,
    company: bool,
    sex: Sex,
    score: u8,
}

/// One customer as matching sees it: every field in key form.
#[derive(Clone, Copy)]
pub(super) struct Profile<'a> {
    pub(super) company: bool,
    /// Persons: normalised first name. Companies: empty.
    pub(super) first: &'a str,
    /// Persons: normalised last name. Companies: the company key.
    pub(super) last: &'a str,
    pub(super) email: Option<&'a str>,
    pub(super) phone: Option<&'a str>,
    /// Postcode, street and house number; none without postcode and street.
    pub(super) address: Option<&'a str>,
    pub(super) postcode: &'a str,
    pub(super) birth: Option<Date>,
    pub(super) sex: Sex,
    /// How complete the record is (email, phone, birth date, full address);
    /// the most complete member of a cluster survives.
    pub(super) score: u8,
}

impl Profile<'_> {
    pub(super) fn full_name(&self) -> String {
        match (self.first.is_empty(), self.last.is_empty()) {
            (true, _) => self.last.to_string(),
            (false, true) => self.first.to_string(),
            (false, false) => format!("{} {}", self.first, self.last),
        }
    }
}

/// The keys of all customers, indexed in customer-number order.
#[derive(Default)]
pub(super) struct Keys {
    text: String,
    rows: Vec<Row>,
}

impl Keys {
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Adds a customer; `false` when the buffer cannot address more text.
    pub(super) fn push(&mut self, c: &Customer) -> bool {
        let company = c.is_company;
        let no = self.put(&c.customer_no);
        let (first, last) = if company {
            let name = c
                .company
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or(&c.last_name);
            (self.put(""), self.put(&normalize::company(name)))
        } else {
            let first = self.put(&normalize::name(&c.first_name));
            (first, self.put(&normalize::name(&c.last_name)))
        };
        let a = &c.address;
        let postcode = normalize::postcode(&a.postcode);
        let street = normalize::street(&a.street);
        let address = if postcode.is_empty() || street.is_empty() {
            None
        } else {
            let house = normalize::house_no(&a.house_no);
            let country = normalize::fold(&a.country);
            Some(match country.as_str() {
                "" | "de" => self.put(&format!("{postcode} {street} {house}")),
                cc => self.put(&format!("{cc}-{postcode} {street} {house}")),
            })
        };
        let postcode = self.put(&postcode);
        let email = c
            .email
            .as_deref()
            .and_then(normalize::email)
            .map(|e| self.put(&e));
        let phone = c
            .phone
            .as_deref()
            .and_then(normalize::phone)
            .map(|p| self.put(&p));
        let complete_address = address.is_some() && !a.city.trim().is_empty();
        let score = [
            email.is_some(),
            phone.is_some(),
            c.birth_date.is_some(),
            complete_address,
        ]
        .iter()
        .filter(|x| **x)
        .count() as u8;
        let sex = match (company, c.salutation) {
            (false, Salutation::Mr) => Sex::Male,
            (false, Salutation::Ms) => Sex::Female,
            _ => Sex::Unknown,
        };
        self.rows.push(Row {
            no,
            first,
            last,
            email,
            phone,
            address,
            postcode,
            birth: c.birth_date,
            company,
            sex,
            score,
        });
        u32::try_from(self.text.len()).is_ok() && u32::try_from(self.rows.len()).is_ok()
    }

    /// These keys with the customers `changed` read again (`customer`
    /// looks one up; a number it does not find is gone): the rest is
    /// copied, not read or normalised again. Rows stay in customer-number
    /// order. `None` when the buffer cannot address the text.
    pub(super) fn updated<E>(
        &self,
        changed: &std::collections::BTreeSet<String>,
        mut customer: impl FnMut(&str) -> Result<Option<Customer>, E>,
    ) -> Result<Option<Keys>, E> {
        let mut fresh: Vec<Customer> = Vec::with_capacity(changed.len());
        for no in changed {
            if let Some(c) = customer(no)? {
                fresh.push(c);
            }
        }
        // `changed` is in order, and a customer's number is its key.
        let mut out = Keys {
            text: String::with_capacity(self.text.len()),
            rows: Vec::with_capacity(self.rows.len() + fresh.len()),
        };
        let mut fresh = fresh.into_iter().peekable();
        for i in 0..self.rows.len() as u32 {
            let no = self.customer_no(i);
            while let Some(c) = fresh.next_if(|c| c.customer_no.as_str() < no) {
                if !out.push(&c) {
                    return Ok(None);
                }
            }
            if changed.contains(no) {
                continue;
            }
            out.copy_row(self, i);
        }
        for c in fresh {
            if !out.push(&c) {
                return Ok(None);
            }
        }
        let fits = u32::try_from(out.text.len()).is_ok() && u32::try_from(out.rows.len()).is_ok();
        Ok(fits.then_some(out))
    }

    /// Appends row `i` of `from`, its text copied.
    fn copy_row(&mut self, from: &Keys, i: u32) {
        let r = &from.rows[i as usize];
        let mut copy = |s: Span| self.put(from.str(s));
        let row = Row {
            no: copy(r.no),
            first: copy(r.first),
            last: copy(r.last),
            email: r.email.map(&mut copy),
            phone: r.phone.map(&mut copy),
            address: r.address.map(&mut copy),
            postcode: copy(r.postcode),
            birth: r.birth,
            company: r.company,
            sex: r.sex,
            score: r.score,
        };
        self.rows.push(row);
    }

    fn put(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }

    fn str(&self, s: Span) -> &str {
        let start = s.start as usize;
        self.text.get(start..start + s.len as usize).unwrap_or("")
    }

    pub(super) fn customer_no(&self, i: u32) -> &str {
        self.str(self.rows[i as usize].no)
    }

    /// The index of a customer number (rows are in customer-number order).
    pub(super) fn index_of(&self, customer_no: &str) -> Option<u32> {
        self.rows
            .binary_search_by(|r| self.str(r.no).cmp(customer_no))
            .ok()
            .map(|i| i as u32)
    }

    pub(super) fn get(&self, i: u32) -> Profile<'_> {
        let r = &self.rows[i as usize];
        Profile {
            company: r.company,
            first: self.str(r.first),
            last: self.str(r.last),
            email: r.email.map(|s| self.str(s)),
            phone: r.phone.map(|s| self.str(s)),
            address: r.address.map(|s| self.str(s)),
            postcode: self.str(r.postcode),
            birth: r.birth,
            sex: r.sex,
            score: r.score,
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, Profile<'_>)> + '_ {
        (0..self.rows.len() as u32).map(|i| (i, self.get(i)))
    }
}

/// FxHash (as in rustc): several times faster than SipHash on the short
/// keys blocking hashes a million of. Not DoS-resistant, which does not
/// matter for a dealer's own customer list hashed in a batch job.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher(u64);

pub(super) type FxBuild = BuildHasherDefault<FxHasher>;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
