//! Writing the exports: rows into a reused line buffer, lines into 64 KiB
//! chunks, chunks into the caller's writer, so an unbuffered `File` is as
//! fast as a `BufWriter`.

use std::io::{self, Write};

use encoding_rs::{Encoder, EncoderResult, WINDOWS_1252};
use fastrand::Rng;
use touchpoint_common::Date;

use crate::dialect::Dialect;
use crate::gen::{hu_date, rng, ymd, Gen, Kind, Veh, SALT_BAD, SALT_VISIT};
use crate::tables::MAKE;
use crate::{today, DealerSpec, ExportOptions, ExportStats};

const CHUNK: usize = 64 * 1024;

struct Sink<W: Write> {
    out: W,
    buf: Vec<u8>,
    encoder: Option<Encoder>,
    bytes: u64,
}

impl<W: Write> Sink<W> {
    fn new(out: W, dialect: Dialect) -> Self {
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        if dialect.has_bom() {
            buf.extend_from_slice(b"\xEF\xBB\xBF");
        }
        let encoder = (dialect == Dialect::DmsSemicolon1252).then(|| WINDOWS_1252.new_encoder());
        Self {
            out,
            buf,
            encoder,
            bytes: 0,
        }
    }

    fn line(&mut self, line: &str) -> io::Result<()> {
        match &mut self.encoder {
            None => self.buf.extend_from_slice(line.as_bytes()),
            Some(encoder) => {
                let mut rest = line;
                loop {
                    // Windows-1252 never needs more bytes than the UTF-8 input.
                    self.buf.reserve(rest.len() + 16);
                    let (result, read) = encoder.encode_from_utf8_to_vec_without_replacement(
                        rest,
                        &mut self.buf,
                        false,
                    );
                    rest = &rest[read..];
                    match result {
                        EncoderResult::InputEmpty => break,
                        EncoderResult::OutputFull => continue,
                        EncoderResult::Unmappable(c) => {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("{c:?} has no Windows-1252 encoding"),
                            ))
                        }
                    }
                }
            }
        }
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<u64> {
        self.flush_chunk()?;
        self.out.flush()?;
        Ok(self.bytes)
    }
}

/// Which field of a row gets broken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bad {
    Email,
    Vin,
    Date,
}

fn pick_bad(r: &mut Rng, rate: f64, has_email: bool, has_vehicle: bool) -> Option<Bad> {
    if rate <= 0.0 || r.f64() >= rate {
        return None;
    }
    let mut options = [Bad::Date; 3];
    let mut n = 1;
    if has_email {
        options[n] = Bad::Email;
        n += 1;
    }
    if has_vehicle {
        options[n] = Bad::Vin;
        n += 1;
    }
    Some(options[r.usize(0..n)])
}

fn push_bad_email(r: &mut Rng, line: &mut String, email: &str, d: Dialect) {
    let mut bad = String::with_capacity(email.len() + 4);
    match r.u32(0..3) {
        0 => bad.push_str(&email.replace('@', " at ")),
        1 => bad.push_str(&email.replace('@', "")),
        _ => bad.push_str(&email.replace('@', "@@")),
    }
    d.push_text(line, &bad);
}

fn push_bad_vin(r: &mut Rng, line: &mut String, vin: &str) {
    if r.bool() {
        // A character lost when typing it off the registration document.
        line.push_str(&vin[..16]);
    } else {
        // The letter O for a zero, the classic misreading.
        line.push_str(&vin[..11]);
        line.push('O');
        line.push_str(&vin[12..]);
    }
}

/// 31 February of the year the field should have been in.
fn push_bad_date(line: &mut String, around: Option<i32>, d: Dialect) {
    let year = around.map_or(2019, |day| ymd(day).0);
    d.push_ymd(line, year, 2, 31);
}

/// Writes the combined customer and vehicle export of `spec`, with dates
/// relative to today. See [`write_customer_export_as_of`].
pub fn write_customer_export<W: Write>(
    spec: &DealerSpec,
    opts: &ExportOptions,
    out: W,
) -> io::Result<ExportStats> {
    write_customer_export_as_of(spec, opts, today(), out)
}

/// Writes one combined customer and vehicle export: one row per vehicle with
/// the customer columns repeated; a customer without a vehicle gets one row
/// with empty vehicle columns. Last services lie within two years before
/// `as_of`, next inspections mostly after it.
pub fn write_customer_export_as_of<W: Write>(
    spec: &DealerSpec,
    opts: &ExportOptions,
    as_of: Date,
    out: W,
) -> io::Result<ExportStats> {
    let d = opts.dialect;
    let delim = char::from(d.delimiter());
    let mut sink = Sink::new(out, d);
    let mut line = String::with_capacity(512);
    let mut street = String::with_capacity(64);
    let mut stats = ExportStats::default();
    d.push_header(&mut line, d.customer_columns());
    sink.line(&line)?;

    let mut g = Gen::new(spec, opts, as_of.days());
    while g.advance() {
        let p = &g.person;
        stats.customers += 1;
        match g.kind {
            Kind::Duplicate(_) => stats.duplicates += 1,
            Kind::Household(_) => stats.households += 1,
            Kind::Fleet if g.vehicles.len() >= 2 => stats.fleets += 1,
            _ => {}
        }
        stats.vehicles += g.vehicles.len() as u64;
        let mut bad_rng = rng(spec.seed, g.index() as u64, SALT_BAD);
        let rows = g.vehicles.len().max(1);
        for row in 0..rows {
            let v = g.vehicles.get(row);
            let bad = pick_bad(
                &mut bad_rng,
                opts.bad_row_rate,
                !p.email.is_empty(),
                v.is_some(),
            );
            line.clear();
            d.push_customer_no(&mut line, p.no);
            line.push(delim);
            d.push_salutation(&mut line, p.salutation);
            line.push(delim);
            d.push_text(&mut line, &p.first);
            line.push(delim);
            d.push_text(&mut line, &p.last);
            line.push(delim);
            d.push_text(&mut line, &p.company);
            line.push(delim);
            if d == Dialect::DmsCommaUtf8Bom {
                d.push_text(&mut line, &p.street);
                line.push(delim);
                d.push_text(&mut line, &p.house_no);
            } else {
                // Street and number in one column, as most German systems keep them.
                street.clear();
                street.push_str(&p.street);
                street.push(' ');
                street.push_str(&p.house_no);
                d.push_text(&mut line, &street);
            }
            line.push(delim);
            line.push_str(&p.postcode);
            line.push(delim);
            d.push_text(&mut line, &p.city);
            line.push(delim);
            if bad == Some(Bad::Email) {
                push_bad_email(&mut bad_rng, &mut line, &p.email, d);
            } else {
                d.push_text(&mut line, &p.email);
            }
            line.push(delim);
            d.push_text(&mut line, &p.phone);
            line.push(delim);
            if bad == Some(Bad::Date) && v.is_none() {
                push_bad_date(&mut line, p.birth, d);
            } else {
                d.push_date(&mut line, p.birth);
            }
            line.push(delim);
            d.push_consent(&mut line, p.consent_email);
            line.push(delim);
            d.push_consent(&mut line, p.consent_post);
            line.push(delim);
            d.push_consent(&mut line, p.consent_phone);
            line.push(delim);
            if let Some(v) = v {
                if bad == Some(Bad::Vin) {
                    push_bad_vin(&mut bad_rng, &mut line, v.vin_str());
                } else {
                    line.push_str(v.vin_str());
                }
                line.push(delim);
                line.push_str(MAKE);
                line.push(delim);
                line.push_str(v.model.name);
                line.push(delim);
                if bad == Some(Bad::Date) {
                    push_bad_date(&mut line, Some(v.first_registration), d);
                } else {
                    d.push_date(&mut line, Some(v.first_registration));
                }
                line.push(delim);
                // The past quarter's response is the last service now.
                let (last, km) = match g.past(v).and_then(|p| p.response) {
                    Some(day) => (Some(day), Some(v.km_at(day))),
                    None => (v.last_service, v.last_service_km),
                };
                d.push_date(&mut line, last);
                line.push(delim);
                d.push_km(&mut line, km);
                line.push(delim);
                d.push_date(&mut line, v.next_inspection);
                line.push(delim);
                d.push_date(&mut line, v.warranty_end);
            } else {
                // VIN, make, model, first registration, last service, km, HU, warranty.
                for _ in 0..7 {
                    line.push(delim);
                }
            }
            line.push_str(d.line_end());
            sink.line(&line)?;
            stats.rows += 1;
            stats.bad_rows += u64::from(bad.is_some());
        }
    }
    stats.bytes = sink.finish()?;
    Ok(stats)
}

/// Writes the service-visits export of `spec`, with dates relative to today.
/// See [`write_visits_export_as_of`].
pub fn write_visits_export<W: Write>(
    spec: &DealerSpec,
    opts: &ExportOptions,
    out: W,
) -> io::Result<ExportStats> {
    write_visits_export_as_of(spec, opts, today(), out)
}

/// Writes the workshop history of the same customers and vehicles as
/// [`write_customer_export_as_of`] with the same spec, options and date: one
/// row per visit (customer number, VIN, date, km, kind) over the last five
/// years, oldest first per vehicle. Each vehicle's last "Inspektion" is the
/// last service of the customer export, with the same date and mileage.
/// Kinds: "Inspektion", "HU/AU", "Reifenwechsel", "Reparatur", "Garantie".
pub fn write_visits_export_as_of<W: Write>(
    spec: &DealerSpec,
    opts: &ExportOptions,
    as_of: Date,
    out: W,
) -> io::Result<ExportStats> {
    let d = opts.dialect;
    let delim = char::from(d.delimiter());
    let mut sink = Sink::new(out, d);
    let mut line = String::with_capacity(128);
    let mut stats = ExportStats::default();
    d.push_header(&mut line, d.visit_columns());
    sink.line(&line)?;

    let mut visits = Vec::with_capacity(32);
    let mut g = Gen::new(spec, opts, as_of.days());
    while g.advance() {
        let mut customer_counted = false;
        let first_send = g
            .vehicles
            .iter()
            .filter_map(|v| g.past(v))
            .map(|p| p.sent)
            .min();
        for v in &g.vehicles {
            visit_history(spec.seed, v, g.as_of, &mut visits);
            if let Some(first) = first_send {
                // After the quarter's first reminder to this customer the
                // response model decides who comes for a service, with the
                // vehicle reminded (attribution credits a reminder about a
                // vehicle only with a service of that vehicle). Their tyre
                // changes, repairs and HU visits go on as drawn: organic
                // workshop visits that answer no service reminder.
                visits.retain(|&(day, _, kind)| day <= first || kind != "Inspektion");
            }
            if let Some(day) = g.past(v).and_then(|p| p.response) {
                visits.push((day, v.km_at(day), "Inspektion"));
                visits.sort_unstable_by_key(|&(day, km, kind)| (day, km, kind));
            }
            if visits.is_empty() {
                continue;
            }
            if !customer_counted {
                stats.customers += 1;
                customer_counted = true;
            }
            stats.vehicles += 1;
            let mut bad_rng = rng(spec.seed, v.ordinal, SALT_BAD ^ SALT_VISIT);
            for &(day, km, kind) in &visits {
                let bad = pick_bad(&mut bad_rng, opts.bad_row_rate, false, true);
                line.clear();
                d.push_customer_no(&mut line, g.person.no);
                line.push(delim);
                if bad == Some(Bad::Vin) {
                    push_bad_vin(&mut bad_rng, &mut line, v.vin_str());
                } else {
                    line.push_str(v.vin_str());
                }
                line.push(delim);
                if bad == Some(Bad::Date) {
                    push_bad_date(&mut line, Some(day), d);
                } else {
                    d.push_date(&mut line, Some(day));
                }
                line.push(delim);
                d.push_km(&mut line, Some(km));
                line.push(delim);
                line.push_str(kind);
                line.push_str(d.line_end());
                sink.line(&line)?;
                stats.rows += 1;
                stats.bad_rows += u64::from(bad.is_some());
            }
        }
    }
    stats.bytes = sink.finish()?;
    Ok(stats)
}

/// Writes the send history of `spec`'s past quarter (see [`crate::history`]),
/// with dates relative to today. See [`write_history_export_as_of`].
pub fn write_history_export<W: Write>(
    spec: &DealerSpec,
    opts: &ExportOptions,
    out: W,
) -> io::Result<ExportStats> {
    write_history_export_as_of(spec, opts, today(), out)
}

/// Writes the log the system Touchpoint replaces kept of the past quarter:
/// one row per yearly service reminder it sent (by email with email
/// consent, else by letter unless refused) or held back for its control
/// group (`Kontrollgruppe`): customer number, VIN, service, channel, day,
/// cost. The same customers and vehicles as [`write_customer_export_as_of`]
/// with the same spec, options and date; empty (a header) unless
/// `opts.past_quarter`.
pub fn write_history_export_as_of<W: Write>(
    spec: &DealerSpec,
    opts: &ExportOptions,
    as_of: Date,
    out: W,
) -> io::Result<ExportStats> {
    use crate::history::SERVICE;
    let d = opts.dialect;
    let delim = char::from(d.delimiter());
    let mut sink = Sink::new(out, d);
    let mut line = String::with_capacity(128);
    let mut stats = ExportStats::default();
    for (i, h) in [
        "Kundennr",
        "FIN",
        "Dienst",
        "Kanal",
        "Versanddatum",
        "Kosten",
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            line.push(delim);
        }
        line.push_str(h);
    }
    line.push_str(d.line_end());
    sink.line(&line)?;
    let decimal = if delim == ',' { '.' } else { ',' };
    let mut g = Gen::new(spec, opts, as_of.days());
    while g.advance() {
        let p = &g.person;
        // Nobody the previous system could not write to was in its draw.
        let Some((channel, cents)) = crate::history::channel(p) else {
            continue;
        };
        let mut customer_counted = false;
        for v in &g.vehicles {
            let Some(past) = g.past(v) else { continue };
            if !customer_counted {
                stats.customers += 1;
                customer_counted = true;
            }
            stats.vehicles += 1;
            line.clear();
            d.push_customer_no(&mut line, p.no);
            line.push(delim);
            line.push_str(v.vin_str());
            line.push(delim);
            line.push_str(SERVICE);
            line.push(delim);
            line.push_str(if past.control {
                "Kontrollgruppe"
            } else {
                channel
            });
            line.push(delim);
            d.push_date(&mut line, Some(past.sent));
            line.push(delim);
            if !past.control {
                line.push_str(&format!("{}{decimal}{:02}", cents / 100, cents % 100));
            }
            line.push_str(d.line_end());
            sink.line(&line)?;
            stats.rows += 1;
        }
    }
    stats.bytes = sink.finish()?;
    Ok(stats)
}

/// The visits of one vehicle in the five years before `as_of`, in date order.
fn visit_history(seed: u64, v: &Veh, as_of: i32, out: &mut Vec<(i32, u32, &'static str)>) {
    out.clear();
    let mut r = rng(seed, v.ordinal, SALT_VISIT);
    let fr = v.first_registration;
    let window = (as_of - 5 * 365).max(fr + 1);

    // Yearly inspections, back from the last one the customer export shows.
    if let (Some(last), Some(km)) = (v.last_service, v.last_service_km) {
        out.push((last, km, "Inspektion"));
        let mut day = last;
        loop {
            day -= 365 + r.i32(-40..=40);
            if day < window || day < fr + 200 {
                break;
            }
            out.push((day, v.km_at(day), "Inspektion"));
        }
    }
    // Statutory inspections done at this dealer.
    for k in 0..16 {
        let day = hu_date(fr, k);
        if day >= as_of {
            break;
        }
        if day >= window && r.u32(0..100) < 60 {
            let day = day - r.i32(0..25);
            out.push((day, v.km_at(day), "HU/AU"));
        }
    }
    // Seasonal tyre changes for customers who store their tyres here.
    if r.u32(0..100) < 35 {
        let (y0, _, _) = ymd(window);
        let (y1, _, _) = ymd(as_of);
        for y in y0..=y1 {
            for (month, spread) in [(3, 45), (10, 45)] {
                let day = crate::gen::days_of(y, month, 20) + r.i32(0..spread);
                if day >= window && day < as_of && r.u32(0..100) < 80 {
                    out.push((day, v.km_at(day), "Reifenwechsel"));
                }
            }
        }
    }
    // Repairs, under warranty while it lasts.
    let years = (as_of - window) / 365;
    for _ in 0..years {
        if r.u32(0..100) < 15 {
            let day = window + r.i32(0..(as_of - window).max(1));
            let kind = match v.warranty_end {
                Some(end) if day <= end => "Garantie",
                _ => "Reparatur",
            };
            out.push((day, v.km_at(day), kind));
        }
    }
    out.sort_unstable_by_key(|&(day, km, kind)| (day, km, kind));
}

/// One workshop visit for [`write_visit_rows`]: a visits export written
/// from outside the generator (the simulation's daily DMS exports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VisitRow<'a> {
    /// As the customer export states it.
    pub customer_no: &'a str,
    pub vin: &'a str,
    pub day: Date,
    pub km: u32,
    /// "Inspektion", "HU/AU", …
    pub kind: &'a str,
}

/// Writes `rows` as a service-visits export in `dialect`: the columns,
/// dates, mileages and encoding of [`write_visits_export_as_of`].
pub fn write_visit_rows<W: Write>(
    dialect: Dialect,
    rows: &[VisitRow],
    out: W,
) -> io::Result<ExportStats> {
    let d = dialect;
    let mut sink = Sink::new(out, d);
    let mut line = String::with_capacity(128);
    let mut stats = ExportStats::default();
    d.push_header(&mut line, d.visit_columns());
    sink.line(&line)?;
    for r in rows {
        line.clear();
        d.push_text(&mut line, r.customer_no);
        d.push_delim(&mut line);
        d.push_text(&mut line, r.vin);
        d.push_delim(&mut line);
        d.push_date(&mut line, Some(r.day.days()));
        d.push_delim(&mut line);
        d.push_km(&mut line, Some(r.km));
        d.push_delim(&mut line);
        d.push_text(&mut line, r.kind);
        line.push_str(d.line_end());
        sink.line(&line)?;
        stats.rows += 1;
    }
    stats.bytes = sink.finish()?;
    Ok(stats)
}
