//! What a letter says around its body: the dealer's return-address line
//! and information block (DIN 5008 form B), the customer's address and the
//! date, as [`super::pdf`] prints them.

use touchpoint_common::domain::Customer;
use touchpoint_common::outbox::Message;
use touchpoint_common::policy::TenantPolicy;
use touchpoint_common::Date;

use super::pdf::Letter;

/// A letter as the lettershop prints it: the dealer's sender line and
/// information block (DIN 5008 form B), the customer's address, the body.
pub(super) fn letter_for(
    tenant: &TenantPolicy,
    c: &Customer,
    m: &Message,
    body: String,
    day: Date,
) -> Letter {
    let sender = &tenant.sender;
    let dealer_name = if sender.name.is_empty() {
        tenant.tenant.name.clone()
    } else {
        sender.name.clone()
    };
    let sender_line = [
        dealer_name.clone(),
        sender.street.clone(),
        format!("{} {}", sender.postcode, sender.city),
    ]
    .into_iter()
    .filter(|s| !s.trim().is_empty())
    .collect::<Vec<_>>()
    .join(" · ");
    let mut info = vec![dealer_name];
    if !sender.phone.is_empty() {
        info.push(format!("Telefon {}", sender.phone));
    }
    if !sender.email.is_empty() {
        info.push(sender.email.clone());
    }
    let a = &c.address;
    let mut address = vec![c.display_name()];
    // A person with a company on record: the company is a line of the
    // address, under the name.
    if let (false, Some(company)) = (c.is_company, c.company.as_deref()) {
        if !company.trim().is_empty() {
            address.push(company.trim().to_string());
        }
    }
    address.push(format!("{} {}", a.street, a.house_no).trim().to_string());
    address.push(format!("{} {}", a.postcode, a.city));
    if !a.country.is_empty() && a.country != "DE" {
        address.push(a.country.clone());
    }
    Letter {
        message: m.id,
        recipient: m.recipient.clone(),
        address,
        postcode: a.postcode.clone(),
        sender_line,
        info,
        logo: tenant.slots.get("logo").cloned(),
        date: format!("{:02}.{:02}.{}", day.day(), day.month(), day.year()),
        body,
    }
}
