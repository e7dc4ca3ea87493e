//! Maps the column headers of dealer-management-system exports onto
//! [`ImportField`]s: the tenant's own mapping first, then built-in German and
//! English names. Headers are compared folded (case, whitespace,
//! punctuation and umlauts ignored), so `Kunden-Nr.`, `KUNDENNR` and
//! `Kunden Nr` are one name.

use std::collections::BTreeMap;

use touchpoint_common::domain::ImportField;

use super::values::fold_key;

use ImportField as F;

/// Built-in header names, folded. Deliberately no bare generic words such as
/// "Nr", "Datum" or "Kunde" whose meaning differs between systems; tenants
/// map those themselves.
const DEFAULTS: &[(F, &[&str])] = &[
    (
        F::CustomerNo,
        &[
            "kundennr",
            "kundennummer",
            "kdnr",
            "kdnummer",
            "kundenid",
            "kunr",
            "knr",
            "kundenkennung",
            "kundennrdms",
            "debitor",
            "debitornr",
            "debitorennr",
            "debitorennummer",
            "customerno",
            "customernr",
            "customernumber",
            "customerid",
            "custno",
            "custid",
            "clientno",
            "clientid",
            "clientnumber",
        ],
    ),
    (
        F::Salutation,
        &[
            "anrede",
            "salutation",
            "geschlecht",
            "gender",
            "briefanrede",
        ],
    ),
    (
        F::FirstName,
        &["vorname", "vornamen", "firstname", "givenname", "forename"],
    ),
    (
        F::LastName,
        &[
            "nachname",
            "familienname",
            "lastname",
            "surname",
            "familyname",
        ],
    ),
    (
        F::FullName,
        &[
            "vollername",
            "vollstaendigername",
            "fullname",
            "kundenname",
            "customername",
            "namevorname",
            "nachnamevorname",
            "vornamenachname",
            "vorundnachname",
        ],
    ),
    (
        F::Company,
        &[
            "firma",
            "firmenname",
            "firmierung",
            "unternehmen",
            "company",
            "companyname",
            "organisation",
            "organization",
        ],
    ),
    (
        F::IsCompany,
        &[
            "firmenkunde",
            "gewerblich",
            "gewerbekunde",
            "geschaeftskunde",
            "iscompany",
            "businesscustomer",
            "business",
        ],
    ),
    (
        F::Street,
        &[
            "strasse",
            "str",
            "strassehausnummer",
            "strassehausnr",
            "strassenr",
            "strassehnr",
            "adresse",
            "anschrift",
            "street",
            "streetaddress",
            "address",
            "addressline1",
            "street1",
        ],
    ),
    (
        F::HouseNo,
        &[
            "hausnummer",
            "hausnr",
            "hnr",
            "housenumber",
            "houseno",
            "streetnumber",
        ],
    ),
    (
        F::Postcode,
        &[
            "plz",
            "postleitzahl",
            "zip",
            "zipcode",
            "postcode",
            "postalcode",
        ],
    ),
    (F::City, &["ort", "stadt", "wohnort", "city", "town"]),
    (
        F::Country,
        &[
            "land",
            "staat",
            "laenderkennzeichen",
            "lkz",
            "country",
            "countrycode",
            "nation",
        ],
    ),
    (
        F::Email,
        &[
            "email",
            "emailadresse",
            "mail",
            "mailadresse",
            "emailaddress",
            "emailprivat",
        ],
    ),
    (
        F::Phone,
        &[
            "telefon",
            "tel",
            "telefonnummer",
            "telnr",
            "telefonprivat",
            "telprivat",
            "telefongeschaeftlich",
            "festnetz",
            "mobil",
            "mobilnummer",
            "mobiltelefon",
            "handy",
            "handynummer",
            "phone",
            "phonenumber",
            "telephone",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "cell",
            "cellphone",
        ],
    ),
    (
        F::BirthDate,
        &[
            "geburtsdatum",
            "gebdatum",
            "gebdat",
            "geburtstag",
            "geboren",
            "dateofbirth",
            "birthdate",
            "birthday",
            "dob",
        ],
    ),
    (
        F::Language,
        &["sprache", "korrespondenzsprache", "language", "lang"],
    ),
    (
        F::Vin,
        &[
            "fin",
            "fahrgestellnummer",
            "fahrgestellnr",
            "fgnr",
            "fzgident",
            "fahrzeugidentnummer",
            "fahrzeugidentifizierungsnummer",
            "vin",
            "chassisno",
            "chassisnumber",
            "vehicleidentificationnumber",
        ],
    ),
    (
        F::Make,
        &[
            "marke",
            "hersteller",
            "fabrikat",
            "make",
            "brand",
            "manufacturer",
        ],
    ),
    (
        F::Model,
        &[
            "modell",
            "modellbezeichnung",
            "fahrzeugmodell",
            "fahrzeugtyp",
            "typ",
            "typbezeichnung",
            "model",
            "modelname",
            "vehiclemodel",
        ],
    ),
    (
        F::FirstRegistration,
        &[
            "erstzulassung",
            "ez",
            "ezdatum",
            "erstzulassungsdatum",
            "datumerstzulassung",
            "firstregistration",
            "dateoffirstregistration",
            "registrationdate",
        ],
    ),
    (
        F::LastServiceDate,
        &[
            "letzterservice",
            "letzteinspektion",
            "letztewartung",
            "letzterwerkstattbesuch",
            "datumletzterservice",
            "letzterservicedatum",
            "lastservice",
            "lastservicedate",
            "lastinspection",
        ],
    ),
    (
        F::LastServiceKm,
        &[
            "kmstand",
            "kilometerstand",
            "km",
            "laufleistung",
            "tachostand",
            "kmletzterservice",
            "kmstandletzterservice",
            "mileage",
            "odometer",
            "lastservicekm",
            "lastservicemileage",
        ],
    ),
    (
        F::NextInspection,
        &[
            "naechstehu",
            "hufaellig",
            "hu",
            "huau",
            "naechstehuau",
            "hutermin",
            "hudatum",
            "tuev",
            "tuevfaellig",
            "naechstertuev",
            "nextinspection",
            "inspectiondue",
            "nextmot",
            "motdue",
        ],
    ),
    (
        F::WarrantyEnd,
        &[
            "garantieende",
            "garantiebis",
            "garantieablauf",
            "garantieenddatum",
            "endegarantie",
            "warrantyend",
            "warrantyuntil",
            "warrantyexpiry",
            "endofwarranty",
        ],
    ),
    (
        F::ConsentEmail,
        &[
            "einwilligungemail",
            "einwilligungmail",
            "emaileinwilligung",
            "emailwerbung",
            "werbungemail",
            "optinemail",
            "emailoptin",
            "emailconsent",
            "consentemail",
            "dsgvoemail",
        ],
    ),
    (
        F::ConsentPost,
        &[
            "einwilligungpost",
            "einwilligungbrief",
            "posteinwilligung",
            "postwerbung",
            "werbungpost",
            "optinpost",
            "postconsent",
            "consentpost",
            "letterconsent",
            "consentletter",
        ],
    ),
    (
        F::ConsentPhone,
        &[
            "einwilligungtelefon",
            "einwilligungtel",
            "telefoneinwilligung",
            "telefonwerbung",
            "werbungtelefon",
            "optintelefon",
            "phoneconsent",
            "consentphone",
            "optinphone",
        ],
    ),
    (
        F::ConsentDate,
        &[
            "einwilligungsdatum",
            "einwilligungdatum",
            "datumeinwilligung",
            "datumdereinwilligung",
            "einwilligungam",
            "optindatum",
            "optindate",
            "consentdate",
            "consentat",
            "consenttimestamp",
        ],
    ),
    (
        F::ConsentSource,
        &["einwilligungsquelle", "quelleeinwilligung", "consentsource"],
    ),
    (
        F::ConsentChannel,
        &[
            "kanal",
            "kommunikationskanal",
            "einwilligungskanal",
            "channel",
            "consentchannel",
        ],
    ),
    (
        F::ConsentGranted,
        &[
            "einwilligung",
            "einwilligungerteilt",
            "zustimmung",
            "consent",
            "consentgranted",
            "granted",
            "optin",
        ],
    ),
    (
        F::VisitDate,
        &[
            "werkstattbesuch",
            "besuchsdatum",
            "besuchdatum",
            "datumwerkstattbesuch",
            "werkstattdatum",
            "auftragsdatum",
            "annahmedatum",
            "visitdate",
            "visit",
        ],
    ),
    (
        F::VisitKm,
        &[
            "kmbeibesuch",
            "kmstandbesuch",
            "kmbeiauftrag",
            "kmstandauftrag",
            "kmbeiannahme",
            "visitkm",
            "visitmileage",
        ],
    ),
    (
        F::VisitKind,
        &[
            "auftragsart",
            "auftragstyp",
            "besuchsart",
            "leistungsart",
            "visittype",
            "visitkind",
            "servicetype",
            "besuchstyp",
            "werkstattleistung",
        ],
    ),
    (
        // Only names that say "amount of this order or invoice": a bare
        // `Umsatz` or `Betrag` in a customer export is something else.
        F::VisitValue,
        &[
            "rechnungsbetrag",
            "rechnungssumme",
            "rechnungsbetragbrutto",
            "auftragswert",
            "auftragssumme",
            "auftragsbetrag",
            "invoiceamount",
            "invoicetotal",
            "ordervalue",
            "orderamount",
            "visitvalue",
        ],
    ),
    (
        // The column that makes a file a response file.
        F::ResponseKind,
        &[
            "reaktion",
            "reaktionsart",
            "artderreaktion",
            "kundenreaktion",
            "rueckmeldung",
            "rueckmeldungsart",
            "response",
            "responsekind",
            "responsetype",
            "typeofresponse",
        ],
    ),
    (
        F::ResponseDate,
        &[
            "reaktionsdatum",
            "datumreaktion",
            "reaktionam",
            "rueckmeldedatum",
            "rueckmeldungsdatum",
            "datumrueckmeldung",
            "responsedate",
            "dateofresponse",
        ],
    ),
    (
        F::ResponseValue,
        &[
            "reaktionswert",
            "angebotswert",
            "angebotsbetrag",
            "responsevalue",
            "offervalue",
            "offeramount",
        ],
    ),
    (
        F::ResponseNote,
        &[
            "reaktionsnotiz",
            "reaktionsbemerkung",
            "responsenote",
            "responseremark",
        ],
    ),
    // Send history files (a previous system's log of what it sent). Their
    // channel column is the consent files' `Kanal`/`channel`.
    (
        F::SentService,
        &[
            "dienst",
            "massnahme",
            "anlass",
            "service",
            "sentservice",
            "touchpointservice",
        ],
    ),
    (
        F::SentDate,
        &[
            "versanddatum",
            "versendetam",
            "gesendetam",
            "sentdate",
            "senton",
            "sentat",
            "sent",
        ],
    ),
    (
        F::SentCost,
        &["versandkosten", "kosten", "sentcost", "cost"],
    ),
];

/// Generic headers that name a response file's date, value and note only
/// in a response file (one with a response-kind column): elsewhere a bare
/// `Datum` or `Betrag` means something else.
const IN_RESPONSE_FILES: &[(F, &[&str])] = &[
    (
        F::ResponseDate,
        &[
            "datum",
            "date",
            "termindatum",
            "terminam",
            "datumdestermins",
            "appointmentdate",
        ],
    ),
    (
        F::ResponseValue,
        &["wert", "betrag", "summe", "umsatz", "value", "amount"],
    ),
    (
        F::ResponseNote,
        &[
            "notiz",
            "bemerkung",
            "bemerkungen",
            "anmerkung",
            "kommentar",
            "hinweis",
            "note",
            "notes",
            "remark",
            "remarks",
            "comment",
        ],
    ),
];

/// A plain "Name" column: the last name when a first-name column exists,
/// otherwise a full name to split.
const NAME: &str = "name";

/// The built-in field for a folded header. A trailing number is ignored when
/// the header does not match as it is (`E-Mail 2`, `Telefon1`).
pub fn default_field(folded: &str) -> Option<ImportField> {
    let lookup = |key: &str| {
        DEFAULTS
            .iter()
            .find(|(_, names)| names.contains(&key))
            .map(|(f, _)| *f)
    };
    lookup(folded).or_else(|| {
        let base = folded.trim_end_matches(|c: char| c.is_ascii_digit());
        (base.len() < folded.len() && !base.is_empty())
            .then(|| lookup(base))
            .flatten()
    })
}

/// Maps headers (as written) to fields: the tenant's `columns` first, then
/// the defaults, then rules that need the whole header: "Name" (see
/// [`NAME`]), a mileage column in a visit file, which is the mileage of
/// the visit, and in a response file the generic names of
/// [`IN_RESPONSE_FILES`] and an order value, which is the response's.
pub fn map_headers(
    headers: &[String],
    overrides: &BTreeMap<String, ImportField>,
) -> Vec<Option<ImportField>> {
    let overrides: Vec<(String, ImportField)> =
        overrides.iter().map(|(h, f)| (fold_key(h), *f)).collect();
    let mut fields = Vec::with_capacity(headers.len());
    let mut by_default = Vec::with_capacity(headers.len());
    for h in headers {
        let key = fold_key(h);
        if key.is_empty() {
            fields.push(None);
            by_default.push(false);
        } else if let Some((_, f)) = overrides.iter().find(|(k, _)| *k == key) {
            fields.push(Some(*f));
            by_default.push(false);
        } else if key == NAME {
            fields.push(Some(F::FullName));
            by_default.push(true);
        } else {
            fields.push(default_field(&key));
            by_default.push(true);
        }
    }
    let has = |f: ImportField| fields.contains(&Some(f));
    let has_first_name = has(F::FirstName);
    let visit_file = has(F::VisitDate) && !has(F::LastServiceDate) && !has(F::VisitKm);
    let response_file = has(F::ResponseKind);
    for (i, h) in headers.iter().enumerate() {
        if !by_default[i] {
            continue;
        }
        let key = fold_key(h);
        if response_file {
            if fields[i].is_none() {
                fields[i] = IN_RESPONSE_FILES
                    .iter()
                    .find(|(_, names)| names.contains(&key.as_str()))
                    .map(|(f, _)| *f);
            }
            if fields[i] == Some(F::VisitValue) {
                fields[i] = Some(F::ResponseValue);
            }
        }
        if fields[i] == Some(F::FullName) && has_first_name && key == NAME {
            fields[i] = Some(F::LastName);
        }
        if fields[i] == Some(F::LastServiceKm) && visit_file {
            fields[i] = Some(F::VisitKm);
        }
    }
    fields
}

#[cfg(test)]
mod tests;
