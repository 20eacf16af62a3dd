//! Rule-set versions, charges, court records, sentences, legal holds and their two-person
//! overrides, and the facts the alerts are computed from. All audited and insert-only.

use std::collections::HashMap;

use crate::sql::{params, OptionalExtension, Row};
use chrono::NaiveDate;
use serde::Serialize;

use domain::audit::Value;
use domain::custody::FacilityId;
use domain::legal::{Extension, HoldKind, Seriousness};
use domain::separation::PersonId;
use domain::time::{from_micros, to_micros, Instant};

use crate::SqlTx;
use crate::{BookingId, StoreError, StoreResult};

/// A charge as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Charge {
    /// The offence, as the charging document names it.
    pub offence: String,
    /// Less serious or serious.
    pub seriousness: Seriousness,
    /// Highest penalty the law sets for it, in years.
    pub max_penalty_years: Option<f64>,
    /// Court case number.
    pub court_case: Option<String>,
    /// When recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Instant,
    /// Who recorded it.
    pub recorded_by: String,
}

/// A court record as stored: a hearing, the day reasons were given, counsel, a production order
/// or a pretrial extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CourtRecord {
    /// hearing, reasons_given, counsel, production_order or extension.
    pub kind: String,
    /// The day it concerns.
    pub on_date: NaiveDate,
    /// The court.
    pub court: Option<String>,
    /// Ruling, order or case reference; the counsel's name for `counsel`.
    pub reference: Option<String>,
    /// Months added, for extensions.
    pub months: Option<u32>,
    /// Note.
    pub note: Option<String>,
    /// When recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Instant,
    /// Who recorded it.
    pub recorded_by: String,
}

/// A legal hold as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldRecord {
    /// Stored id, named in refusals.
    pub id: i64,
    /// Person number.
    pub person: String,
    /// Kind.
    pub kind: HoldKind,
    /// Country removal to which is forbidden.
    pub country: Option<String>,
    /// Day the person must be produced at court.
    pub on_date: Option<NaiveDate>,
    /// The court or authority that ordered it.
    pub authority: String,
    /// The order's reference.
    pub order_reference: String,
    /// From when.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub effective_from: Instant,
    /// Until when, if it expires.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Instant>,
    /// When it was lifted, if it was.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Instant>,
    /// Who recorded it.
    pub recorded_by: String,
}

impl HoldRecord {
    /// Whether the hold applies at some instant from `from` to `to`.
    pub fn in_force_during(&self, from: Instant, to: Instant) -> bool {
        self.effective_from <= to && self.expires_at.is_none_or(|e| from < e) && self.ended_at.is_none_or(|e| from < e)
    }

    /// Whether the hold applies at `at`.
    pub fn in_force(&self, at: Instant) -> bool {
        self.effective_from <= at && self.expires_at.is_none_or(|e| at < e) && self.ended_at.is_none_or(|e| at < e)
    }
}

/// A hold to write.
#[derive(Debug, Clone)]
pub struct NewHold<'a> {
    /// The person.
    pub person: PersonId,
    /// Kind.
    pub kind: HoldKind,
    /// Country, for do_not_remove.
    pub country: Option<&'a str>,
    /// Day, for produce_at_court.
    pub on_date: Option<NaiveDate>,
    /// The court or authority.
    pub authority: &'a str,
    /// The order's reference.
    pub order_reference: &'a str,
    /// From when.
    pub effective_from: Instant,
    /// Until when.
    pub expires_at: Option<Instant>,
    /// Who records it.
    pub recorded_by: &'a str,
}

/// A hold override as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldOverride {
    /// Stored id.
    pub id: i64,
    /// The hold.
    pub hold: i64,
    /// transfer, release or removal.
    pub movement: String,
    /// Why.
    pub reason: String,
    /// Who asked.
    pub requested_by: String,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub requested_at: Instant,
    /// Who approved it (a second person), if anyone has.
    pub approved_by: Option<String>,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub approved_at: Option<Instant>,
    /// The movement that used it, if one has.
    pub used_by_movement: Option<i64>,
}

/// What the pretrial deadline of a person held now is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct PretrialFacts {
    /// The person.
    pub person: PersonId,
    /// Their number.
    pub number: String,
    /// Facility holding them (the sending one while in transit).
    pub facility: FacilityId,
    /// When they were arrested.
    pub arrested_at: Instant,
    /// Legal basis kind of the custody episode.
    pub basis: String,
    /// Latest classified legal status, if classified.
    pub classified_status: Option<String>,
    /// Sentences are recorded for the custody episode (a judgment was given).
    pub sentenced: bool,
    /// Most serious charge, if any.
    pub seriousness: Option<Seriousness>,
    /// Highest penalty of the charges.
    pub max_penalty_years: Option<f64>,
    /// Extensions granted.
    pub extensions: Vec<Extension>,
}

/// A person in transit now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InTransit {
    /// Their number.
    pub number: String,
    /// Sending facility code and rule set.
    pub from: (String, String),
    /// Receiving facility code.
    pub to: String,
    /// Sent when.
    pub since: Instant,
}

/// An admission or transfer whose family notification (Mandela Rule 68) is not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FamilyNotice {
    /// The movement: the task's id.
    pub movement: i64,
    /// Person number.
    pub person: String,
    /// admission or transfer_out.
    pub event: String,
    /// Facility code where it happened.
    pub facility: String,
    /// When it happened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: Instant,
}

/// A visit by legal counsel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegalVisit {
    /// Counsel's name.
    pub counsel: String,
    /// In what capacity (defence lawyer, public defender, consular officer…).
    pub capacity: String,
    /// When it began.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Instant,
    /// How long, in minutes.
    pub minutes: u32,
    /// Always false: legal visits are never monitored (Rules 61, 120).
    pub monitored: bool,
    /// Who recorded it.
    pub recorded_by: String,
}

/// Reads and writes of legal records, in the caller's transaction.
pub trait LegalTx {
    /// Store a version of a rule set.
    fn insert_rule_set_version(&mut self, code: &str, text: &str, at: Instant, by: &str) -> StoreResult<()>;
    /// The latest stored text of a rule set.
    fn rule_set_text(&mut self, code: &str) -> StoreResult<Option<String>>;
    /// Codes of the rule sets stored.
    fn rule_set_codes(&mut self) -> StoreResult<Vec<String>>;

    /// Write a charge.
    fn insert_charge(&mut self, booking: BookingId, charge: &Charge) -> StoreResult<()>;
    /// Charges of a custody episode, oldest first.
    fn charges(&mut self, booking: BookingId) -> StoreResult<Vec<Charge>>;
    /// Write a court record.
    fn insert_court_record(&mut self, booking: BookingId, record: &CourtRecord) -> StoreResult<()>;
    /// Court records of a custody episode, in date order.
    fn court_records(&mut self, booking: BookingId) -> StoreResult<Vec<CourtRecord>>;
    /// Write a custody episode's sentences and their release date.
    fn insert_sentence_record(
        &mut self,
        booking: BookingId,
        input: &str,
        release_date: NaiveDate,
        at: Instant,
        by: &str,
    ) -> StoreResult<()>;
    /// The latest sentences (input JSON) and release date of a custody episode.
    fn sentence_record(&mut self, booking: BookingId) -> StoreResult<Option<(String, NaiveDate)>>;

    /// Write a hold.
    fn insert_hold(&mut self, hold: &NewHold<'_>) -> StoreResult<i64>;
    /// Lift a hold.
    fn end_hold(&mut self, hold: i64, at: Instant, reason: &str, by: &str) -> StoreResult<()>;
    /// One hold.
    fn hold(&mut self, id: i64) -> StoreResult<Option<HoldRecord>>;
    /// A person's holds (all when None), oldest first, in force or not.
    fn holds(&mut self, person: Option<PersonId>) -> StoreResult<Vec<HoldRecord>>;
    /// Ask to override a hold for one movement.
    fn insert_hold_override(
        &mut self,
        hold: i64,
        movement: &str,
        reason: &str,
        by: &str,
        at: Instant,
    ) -> StoreResult<i64>;
    /// Approve an override request.
    fn approve_hold_override(&mut self, id: i64, by: &str, at: Instant) -> StoreResult<()>;
    /// Record the movement that used an approved override.
    fn use_hold_override(&mut self, id: i64, movement: i64) -> StoreResult<()>;
    /// Overrides of a hold (all when None), newest first.
    fn hold_overrides(&mut self, hold: Option<i64>) -> StoreResult<Vec<HoldOverride>>;

    /// Admissions and transfers of the given facilities since `since` whose family notification
    /// is not recorded, of people who have not declined it, newest first, at most `limit`.
    fn family_notices_open(
        &mut self,
        facilities: &[FacilityId],
        since: Instant,
        limit: u32,
    ) -> StoreResult<Vec<FamilyNotice>>;
    /// The person, kind and facility code of a movement.
    fn movement_subject(&mut self, movement: i64) -> StoreResult<Option<(PersonId, String, String)>>;
    /// Record that a family was told of a movement.
    fn insert_family_notice_done(
        &mut self,
        movement: i64,
        notified: &str,
        method: &str,
        at: Instant,
        by: &str,
    ) -> StoreResult<()>;
    /// Record a legal visit.
    fn insert_legal_visit(&mut self, person: PersonId, visit: &LegalVisit) -> StoreResult<()>;
    /// A person's legal visits, oldest first.
    fn legal_visits(&mut self, person: PersonId) -> StoreResult<Vec<LegalVisit>>;

    /// Pretrial facts of everyone in custody now (or of one person).
    fn pretrial_facts(&mut self, person: Option<PersonId>) -> StoreResult<Vec<PretrialFacts>>;
    /// Release dates of everyone in custody now whose sentences are recorded: (number, facility, date).
    fn release_dates(&mut self) -> StoreResult<Vec<(String, String, NaiveDate)>>;
    /// Everyone in transit now.
    fn in_transit(&mut self) -> StoreResult<Vec<InTransit>>;
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn date(text: &str) -> StoreResult<NaiveDate> {
    text.parse().map_err(|_| StoreError::Backend(format!("date {text}")))
}

fn opt_text(v: Option<&str>) -> Value<'_> {
    v.map(Value::Text).unwrap_or(Value::Null)
}

const HOLD_SELECT: &str = "SELECT h.id, p.number, h.kind, h.country, h.on_date, h.authority, h.order_reference,
    h.effective_from, h.expires_at, e.ended_at, h.recorded_by
    FROM legal_hold h JOIN person p ON p.id = h.person_id LEFT JOIN legal_hold_end e ON e.hold_id = h.id";

fn hold_row(r: &Row<'_>) -> StoreResult<HoldRecord> {
    let kind: String = r.get(2)?;
    let on_date: Option<String> = r.get(4)?;
    Ok(HoldRecord {
        id: r.get(0)?,
        person: r.get(1)?,
        kind: HoldKind::parse(&kind).ok_or_else(|| StoreError::Backend(kind.clone()))?,
        country: r.get(3)?,
        on_date: on_date.as_deref().map(date).transpose()?,
        authority: r.get(5)?,
        order_reference: r.get(6)?,
        effective_from: from_micros(r.get(7)?),
        expires_at: r.get::<_, Option<i64>>(8)?.map(from_micros),
        ended_at: r.get::<_, Option<i64>>(9)?.map(from_micros),
        recorded_by: r.get(10)?,
    })
}

impl LegalTx for SqlTx<'_> {
    fn insert_rule_set_version(&mut self, code: &str, text: &str, at: Instant, by: &str) -> StoreResult<()> {
        self.insert_audited(
            "rule_set_version",
            &[Value::Text(code), Value::Text(text), Value::Int(to_micros(at)), Value::Text(by)],
        )?;
        Ok(())
    }

    fn rule_set_text(&mut self, code: &str) -> StoreResult<Option<String>> {
        self.conn()
            .prepare_cached("SELECT text FROM rule_set_version WHERE code = ?1 ORDER BY id DESC LIMIT 1")?
            .query_row([code], |r| r.get(0))
            .optional()
    }

    fn rule_set_codes(&mut self) -> StoreResult<Vec<String>> {
        let rows = self
            .conn()
            .prepare_cached("SELECT DISTINCT code FROM rule_set_version ORDER BY code")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn insert_charge(&mut self, booking: BookingId, c: &Charge) -> StoreResult<()> {
        self.insert_audited(
            "charge",
            &[
                Value::Int(booking),
                Value::Text(&c.offence),
                Value::Text(c.seriousness.as_str()),
                c.max_penalty_years.map(Value::Real).unwrap_or(Value::Null),
                opt_text(c.court_case.as_deref()),
                Value::Int(to_micros(c.recorded_at)),
                Value::Text(&c.recorded_by),
            ],
        )?;
        Ok(())
    }

    fn charges(&mut self, booking: BookingId) -> StoreResult<Vec<Charge>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT offence, seriousness, max_penalty_years, court_case, recorded_at, recorded_by FROM charge
             WHERE booking_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([booking], |r| {
            let seriousness: String = r.get(1)?;
            Ok(Charge {
                offence: r.get(0)?,
                seriousness: Seriousness::parse(&seriousness).unwrap_or(Seriousness::Serious),
                max_penalty_years: r.get(2)?,
                court_case: r.get(3)?,
                recorded_at: from_micros(r.get(4)?),
                recorded_by: r.get(5)?,
            })
        })?;
        rows.collect::<Result<_, _>>()
    }

    fn insert_court_record(&mut self, booking: BookingId, c: &CourtRecord) -> StoreResult<()> {
        let on_date = c.on_date.to_string();
        self.insert_audited(
            "court_record",
            &[
                Value::Int(booking),
                Value::Text(&c.kind),
                Value::Text(&on_date),
                opt_text(c.court.as_deref()),
                opt_text(c.reference.as_deref()),
                c.months.map(|m| Value::Int(i64::from(m))).unwrap_or(Value::Null),
                opt_text(c.note.as_deref()),
                Value::Int(to_micros(c.recorded_at)),
                Value::Text(&c.recorded_by),
            ],
        )?;
        Ok(())
    }

    fn court_records(&mut self, booking: BookingId) -> StoreResult<Vec<CourtRecord>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT kind, on_date, court, reference, months, note, recorded_at, recorded_by FROM court_record
             WHERE booking_id = ?1 ORDER BY on_date, id",
        )?;
        let rows = stmt.query_map([booking], |r| {
            Ok(CourtRecord {
                kind: r.get(0)?,
                on_date: date(&r.get::<_, String>(1)?)?,
                court: r.get(2)?,
                reference: r.get(3)?,
                months: r.get(4)?,
                note: r.get(5)?,
                recorded_at: from_micros(r.get(6)?),
                recorded_by: r.get(7)?,
            })
        })?;
        rows.collect::<Result<_, _>>()
    }

    fn insert_sentence_record(
        &mut self,
        booking: BookingId,
        input: &str,
        release_date: NaiveDate,
        at: Instant,
        by: &str,
    ) -> StoreResult<()> {
        let release = release_date.to_string();
        // Sentenced means convicted: the cached category facts of the person no longer hold.
        self.housing_cache().facts.clear();
        self.insert_audited(
            "sentence_record",
            &[
                Value::Int(booking),
                Value::Text(input),
                Value::Text(&release),
                Value::Int(to_micros(at)),
                Value::Text(by),
            ],
        )?;
        Ok(())
    }

    fn sentence_record(&mut self, booking: BookingId) -> StoreResult<Option<(String, NaiveDate)>> {
        self.conn()
            .prepare_cached(
                "SELECT input, release_date FROM sentence_record WHERE booking_id = ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([booking], |r| Ok((r.get(0)?, date(&r.get::<_, String>(1)?)?)))
            .optional()
    }

    fn insert_hold(&mut self, h: &NewHold<'_>) -> StoreResult<i64> {
        let on_date = h.on_date.map(|d| d.to_string());
        self.insert_audited(
            "legal_hold",
            &[
                Value::Int(h.person),
                Value::Text(h.kind.as_str()),
                opt_text(h.country),
                opt_text(on_date.as_deref()),
                Value::Text(h.authority),
                Value::Text(h.order_reference),
                Value::Int(to_micros(h.effective_from)),
                h.expires_at.map(|e| Value::Int(to_micros(e))).unwrap_or(Value::Null),
                Value::Text(h.recorded_by),
            ],
        )
    }

    fn end_hold(&mut self, hold: i64, at: Instant, reason: &str, by: &str) -> StoreResult<()> {
        self.insert_audited(
            "legal_hold_end",
            &[Value::Int(hold), Value::Int(to_micros(at)), Value::Text(reason), Value::Text(by)],
        )?;
        Ok(())
    }

    fn hold(&mut self, id: i64) -> StoreResult<Option<HoldRecord>> {
        let sql = format!("{HOLD_SELECT} WHERE h.id = ?1");
        self.conn().prepare_cached(&sql)?.query_row([id], hold_row).optional()
    }

    fn holds(&mut self, person: Option<PersonId>) -> StoreResult<Vec<HoldRecord>> {
        let sql = format!("{HOLD_SELECT} WHERE h.person_id = ?1 OR ?1 IS NULL ORDER BY h.id");
        let rows = self.conn().prepare_cached(&sql)?.query_map([person], hold_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn insert_hold_override(
        &mut self,
        hold: i64,
        movement: &str,
        reason: &str,
        by: &str,
        at: Instant,
    ) -> StoreResult<i64> {
        self.insert_audited(
            "hold_override",
            &[Value::Int(hold), Value::Text(movement), Value::Text(reason), Value::Text(by), Value::Int(to_micros(at))],
        )
    }

    fn approve_hold_override(&mut self, id: i64, by: &str, at: Instant) -> StoreResult<()> {
        self.insert_audited("hold_override_approval", &[Value::Int(id), Value::Text(by), Value::Int(to_micros(at))])?;
        Ok(())
    }

    fn use_hold_override(&mut self, id: i64, movement: i64) -> StoreResult<()> {
        self.insert_audited("hold_override_use", &[Value::Int(id), Value::Int(movement)])?;
        Ok(())
    }

    fn hold_overrides(&mut self, hold: Option<i64>) -> StoreResult<Vec<HoldOverride>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT o.id, o.hold_id, o.movement, o.reason, o.requested_by, o.requested_at, a.approved_by, a.approved_at,
                    u.movement_id
             FROM hold_override o LEFT JOIN hold_override_approval a ON a.override_id = o.id
             LEFT JOIN hold_override_use u ON u.override_id = o.id
             WHERE o.hold_id = ?1 OR ?1 IS NULL ORDER BY o.id DESC",
        )?;
        let rows = stmt.query_map([hold], |r| {
            Ok(HoldOverride {
                id: r.get(0)?,
                hold: r.get(1)?,
                movement: r.get(2)?,
                reason: r.get(3)?,
                requested_by: r.get(4)?,
                requested_at: from_micros(r.get(5)?),
                approved_by: r.get(6)?,
                approved_at: r.get::<_, Option<i64>>(7)?.map(from_micros),
                used_by_movement: r.get(8)?,
            })
        })?;
        rows.collect::<Result<_, _>>()
    }

    fn family_notices_open(
        &mut self,
        facilities: &[FacilityId],
        since: Instant,
        limit: u32,
    ) -> StoreResult<Vec<FamilyNotice>> {
        let ids = facilities.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        // The latest preference of the person decides; a refusal means no task (never for a death,
        // which is an incident obligation instead).
        let sql = format!(
            "SELECT m.id, p.number, m.kind, f.code, m.occurred_at FROM movement m
             JOIN person p ON p.id = m.person_id JOIN facility f ON f.id = m.facility_id
             WHERE m.kind IN ('admission', 'transfer_out') AND m.facility_id IN ({ids}) AND m.occurred_at >= ?1
               AND NOT EXISTS (SELECT 1 FROM family_notice_done d WHERE d.movement_id = m.id)
               AND coalesce((SELECT n.declines_family FROM notification_preference n WHERE n.person_id = m.person_id
                             ORDER BY n.id DESC LIMIT 1), 0) = 0
             ORDER BY m.occurred_at DESC, m.id DESC LIMIT ?2"
        );
        let rows = self
            .conn()
            .prepare(&sql)?
            .query_map(params![to_micros(since), limit], |r| {
                Ok(FamilyNotice {
                    movement: r.get(0)?,
                    person: r.get(1)?,
                    event: r.get(2)?,
                    facility: r.get(3)?,
                    occurred_at: from_micros(r.get(4)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn movement_subject(&mut self, movement: i64) -> StoreResult<Option<(PersonId, String, String)>> {
        self
            .conn()
            .prepare_cached(
                "SELECT m.person_id, m.kind, f.code FROM movement m JOIN facility f ON f.id = m.facility_id WHERE m.id = ?1",
            )?
            .query_row([movement], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
    }

    fn insert_family_notice_done(
        &mut self,
        movement: i64,
        notified: &str,
        method: &str,
        at: Instant,
        by: &str,
    ) -> StoreResult<()> {
        self.insert_audited(
            "family_notice_done",
            &[
                Value::Int(movement),
                Value::Text(notified),
                Value::Text(method),
                Value::Int(to_micros(at)),
                Value::Text(by),
            ],
        )?;
        Ok(())
    }

    fn insert_legal_visit(&mut self, person: PersonId, v: &LegalVisit) -> StoreResult<()> {
        self.insert_audited(
            "legal_visit",
            &[
                Value::Int(person),
                Value::Text(&v.counsel),
                Value::Text(&v.capacity),
                Value::Int(to_micros(v.started_at)),
                Value::Int(i64::from(v.minutes)),
                Value::Text(&v.recorded_by),
            ],
        )?;
        Ok(())
    }

    fn legal_visits(&mut self, person: PersonId) -> StoreResult<Vec<LegalVisit>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT counsel, capacity, started_at, minutes, recorded_by FROM legal_visit WHERE person_id = ?1
             ORDER BY started_at, id",
        )?;
        let rows = stmt.query_map([person], |r| {
            Ok(LegalVisit {
                counsel: r.get(0)?,
                capacity: r.get(1)?,
                started_at: from_micros(r.get(2)?),
                minutes: r.get(3)?,
                monitored: false,
                recorded_by: r.get(4)?,
            })
        })?;
        rows.collect::<Result<_, _>>()
    }

    fn pretrial_facts(&mut self, person: Option<PersonId>) -> StoreResult<Vec<PretrialFacts>> {
        let mut charges: HashMap<BookingId, (Seriousness, Option<f64>)> = HashMap::new();
        let mut stmt = self.conn().prepare_cached(
            "SELECT booking_id, max(CASE WHEN seriousness = 'serious' THEN 1 ELSE 0 END), max(max_penalty_years) FROM charge GROUP BY booking_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let serious: bool = r.get(1)?;
            let seriousness = if serious { Seriousness::Serious } else { Seriousness::LessSerious };
            charges.insert(r.get(0)?, (seriousness, r.get(2)?));
        }
        drop(rows);
        let mut extensions: HashMap<BookingId, Vec<Extension>> = HashMap::new();
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT booking_id, on_date, months FROM court_record WHERE kind = 'extension'")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let granted_on = date(&r.get::<_, String>(1)?).map_err(backend)?;
            extensions.entry(r.get(0)?).or_default().push(Extension { granted_on, months: r.get(2)? });
        }
        drop(rows);
        // Classifications and sentences are few beside the people held: read each table once
        // rather than probing it for every person.
        let sentenced: std::collections::HashSet<BookingId> = self
            .conn()
            .prepare_cached("SELECT DISTINCT booking_id FROM sentence_record")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut classified: HashMap<PersonId, (i64, String)> = HashMap::new();
        let mut stmt = self.conn().prepare_cached(
            "SELECT person_id, effective_from, legal_status FROM classification ORDER BY effective_from, id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            classified.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
        }
        drop(rows);
        let mut stmt = self.conn().prepare_cached(
            "SELECT s.person_id, p.number, s.booking_id, s.facility_id, b.arrested_at, b.legal_basis_kind, b.admitted_at
             FROM custody_state s JOIN person p ON p.id = s.person_id JOIN booking b ON b.id = s.booking_id
             WHERE s.status IN ('held', 'in_transit') AND (s.person_id = ?1 OR ?1 IS NULL)",
        )?;
        let mut rows = stmt.query([person])?;
        let mut facts = Vec::new();
        while let Some(r) = rows.next()? {
            let person: PersonId = r.get(0)?;
            let booking: BookingId = r.get(2)?;
            let admitted_at: i64 = r.get(6)?;
            let charge = charges.get(&booking);
            // A classification counts only within the current custody episode.
            let status = classified.get(&person).filter(|(from, _)| *from >= admitted_at).map(|c| c.1.clone());
            facts.push(PretrialFacts {
                person,
                number: r.get(1)?,
                facility: r.get(3)?,
                arrested_at: from_micros(r.get(4)?),
                basis: r.get(5)?,
                classified_status: status,
                sentenced: sentenced.contains(&booking),
                seriousness: charge.map(|c| c.0),
                max_penalty_years: charge.and_then(|c| c.1),
                extensions: extensions.remove(&booking).unwrap_or_default(),
            });
        }
        Ok(facts)
    }

    fn release_dates(&mut self) -> StoreResult<Vec<(String, String, NaiveDate)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT p.number, f.code, r.release_date
             FROM sentence_record r JOIN booking b ON b.id = r.booking_id
             JOIN custody_state s ON s.person_id = b.person_id AND s.booking_id = r.booking_id
             JOIN person p ON p.id = b.person_id JOIN facility f ON f.id = s.facility_id
             WHERE s.status IN ('held', 'in_transit')
               AND r.id = (SELECT max(id) FROM sentence_record WHERE booking_id = r.booking_id)",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, date(&r.get::<_, String>(2)?)?)))?;
        rows.collect::<Result<_, _>>()
    }

    fn in_transit(&mut self) -> StoreResult<Vec<InTransit>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT p.number, f.code, f.jurisdiction, t.code, s.since
             FROM custody_state s JOIN person p ON p.id = s.person_id JOIN facility f ON f.id = s.facility_id
             JOIN facility t ON t.id = s.transit_to
             WHERE s.status = 'in_transit'",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(InTransit {
                number: r.get(0)?,
                from: (r.get(1)?, r.get(2)?),
                to: r.get(3)?,
                since: from_micros(r.get(4)?),
            })
        })?;
        rows.collect::<Result<_, _>>()
    }
}
