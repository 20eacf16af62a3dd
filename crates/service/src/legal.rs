//! Legal safeguards: jurisdiction rule sets, charges and court records, pretrial deadlines,
//! legal holds with two-person overrides, and the alerts that list everyone held past a
//! deadline or a release date.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use domain::incident::NotificationMethod;
use domain::legal::{
    pretrial_alert, pretrial_deadline, pretrial_deadline_day, AlertKind, Hold, HoldKind, PretrialDeadline, Restricted,
    RuleSet, Seriousness,
};
use domain::person::LegalBasisKind;
use domain::sentence::{SentenceInput, SentenceReport};
use domain::separation::{LegalStatus, PersonId};
use domain::text::{CountryCode, LongText, ShortText};
use domain::time::{local_day, rfc3339, Instant};
use store::legal::{
    Charge, CourtRecord, FamilyNotice, HoldOverride, HoldRecord, LegalTx, LegalVisit, NewHold, PretrialFacts,
};
use store::{Store, Tx};

use crate::layout::{line_of, toml_error};
use crate::{audit, Context, Service, ServiceError, ServiceResult};

/// Rule sets shipped with Custodia; a version loaded into the database replaces one of them.
pub const BUILT_IN_RULE_SETS: &[(&str, &str)] =
    &[("generic", include_str!("../rulesets/generic.toml")), ("sv", include_str!("../rulesets/sv.toml"))];

/// Hours an approved hold override stays usable: long enough to arrange the movement, short
/// enough that an old approval does not serve a later, different one.
pub const OVERRIDE_VALID_HOURS: i64 = 72;

/// Parse a rule-set file (TOML). Every problem names its line and field.
pub fn parse_rule_set(text: &str) -> ServiceResult<RuleSet> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| toml_error(text, "", &e))?;
    let rules: RuleSet = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        toml_error(text, &path, e.inner())
    })?;
    rules.validate().map_err(|errors| {
        // Name the line of the period each problem is in: the n-th `[[periods]]` header.
        let headers: Vec<usize> = text.match_indices("[[periods]]").map(|(at, _)| line_of(text, at)).collect();
        ServiceError::Invalid(
            errors
                .into_iter()
                .map(|mut e| {
                    let period =
                        e.field.strip_prefix("periods[").and_then(|r| r.split(']').next()?.parse::<usize>().ok());
                    if let Some(line) = period.and_then(|p| headers.get(p)) {
                        e.field = format!("line {line}: {}", e.field);
                    }
                    e
                })
                .collect(),
        )
    })?;
    Ok(rules)
}

/// The rule set of a jurisdiction: the latest version loaded, or the one shipped.
pub fn rule_set_in<T: Tx>(tx: &mut T, code: &str) -> ServiceResult<RuleSet> {
    let text = match tx.rule_set_text(code)? {
        Some(text) => text,
        None => BUILT_IN_RULE_SETS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| ServiceError::NotFound { what: "rule set", key: code.to_string() })?,
    };
    parse_rule_set(&text)
}

/// Load a new version of a rule set inside the caller's transaction.
pub fn load_rule_set_in<T: Tx>(tx: &mut T, ctx: &Context, text: &str) -> ServiceResult<RuleSet> {
    let rules = parse_rule_set(text)?;
    tx.insert_rule_set_version(&rules.code, text, ctx.now, &ctx.actor)?;
    audit(tx, ctx, "legal.rule_set", &rules.code, &rules)?;
    Ok(rules)
}

/// A charge to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChargeRequest {
    /// The offence.
    pub offence: ShortText,
    /// less_serious or serious.
    pub seriousness: Seriousness,
    /// Highest penalty the law sets, in years (above 0, at most 200).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 200))]
    pub max_penalty_years: Option<f64>,
    /// Court case number.
    #[serde(default)]
    pub court_case: Option<ShortText>,
}

/// The kinds of court record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CourtRecordKind {
    /// A hearing date.
    Hearing,
    /// The day the person was told the reasons for detention (Mandela Rule 119).
    ReasonsGiven,
    /// Legal representation: `reference` is the counsel's name.
    Counsel,
    /// An order to bring the person to court on a date.
    ProductionOrder,
    /// A court's extension of pretrial detention by `months`.
    Extension,
}

impl CourtRecordKind {
    fn as_str(self) -> &'static str {
        match self {
            CourtRecordKind::Hearing => "hearing",
            CourtRecordKind::ReasonsGiven => "reasons_given",
            CourtRecordKind::Counsel => "counsel",
            CourtRecordKind::ProductionOrder => "production_order",
            CourtRecordKind::Extension => "extension",
        }
    }
}

/// A court record to write.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CourtRecordRequest {
    /// What it is.
    pub kind: CourtRecordKind,
    /// The day it concerns.
    pub on: NaiveDate,
    /// The court.
    #[serde(default)]
    pub court: Option<ShortText>,
    /// Ruling, order or case reference; the counsel's name for `counsel`.
    #[serde(default)]
    pub reference: Option<ShortText>,
    /// Months added (extensions only), 1 to 24.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 24))]
    pub months: Option<u32>,
    /// Note.
    #[serde(default)]
    pub note: Option<LongText>,
}

/// A legal hold to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldRequest {
    /// What it forbids.
    pub kind: HoldKind,
    /// The country removal to which is forbidden (do_not_remove).
    #[serde(default)]
    pub country: Option<CountryCode>,
    /// The day of the court appearance (produce_at_court).
    #[serde(default)]
    pub on_date: Option<NaiveDate>,
    /// The court or authority that ordered it.
    pub authority: ShortText,
    /// The order's reference.
    pub order_reference: ShortText,
    /// Until when, if it expires.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Instant>,
}

/// A movement a hold override is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OverriddenMovement {
    /// A transfer.
    Transfer,
    /// A release.
    Release,
    /// A removal to another country.
    Removal,
}

impl OverriddenMovement {
    fn as_str(self) -> &'static str {
        match self {
            OverriddenMovement::Transfer => "transfer",
            OverriddenMovement::Release => "release",
            OverriddenMovement::Removal => "removal",
        }
    }

    fn of(restricted: &Restricted<'_>) -> Self {
        match restricted {
            Restricted::Transfer => OverriddenMovement::Transfer,
            Restricted::Release => OverriddenMovement::Release,
            Restricted::Removal { .. } => OverriddenMovement::Removal,
        }
    }
}

/// A request to override a hold for one movement.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverrideAsk {
    /// The movement to allow once.
    pub movement: OverriddenMovement,
    /// Why.
    pub reason: LongText,
}

/// That a family was told of an admission or transfer (Mandela Rule 68).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoticeDone {
    /// Who was told (name and relationship).
    pub notified: ShortText,
    /// How.
    pub method: NotificationMethod,
    /// When; the time of recording when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub at: Option<Instant>,
}

/// A legal visit to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VisitRequest {
    /// Counsel's name.
    pub counsel: ShortText,
    /// In what capacity (defence lawyer, public defender, consular officer…).
    pub capacity: ShortText,
    /// When it began.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Instant,
    /// How long, in minutes.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1440))]
    pub minutes: u32,
}

/// A person's legal situation.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegalRecord {
    /// Person number.
    pub person: String,
    /// Untried, convicted or other.
    pub legal_status: LegalStatus,
    /// Charges of the current (or last) custody episode.
    pub charges: Vec<Charge>,
    /// Hearings, reasons given, counsel, production orders, extensions.
    pub court_records: Vec<CourtRecord>,
    /// The pretrial deadline, for an untried person in custody.
    pub pretrial: Option<PretrialDeadline>,
    /// The recorded sentences, their release date and how it was reached.
    pub sentences: Option<RecordedSentences>,
    /// Holds, in force or not.
    pub holds: Vec<HoldView>,
    /// Visits by legal counsel, never monitored.
    pub legal_visits: Vec<LegalVisit>,
}

/// Sentences as recorded, with the calculation.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordedSentences {
    /// The sentences and remand as recorded.
    pub input: SentenceInput,
    /// Release date, expiry of each sentence and the trace that explains them.
    pub calculation: SentenceReport,
}

/// A hold with whether it applies now and its overrides.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldView {
    /// The hold.
    #[serde(flatten)]
    pub hold: HoldRecord,
    /// In force now.
    pub in_force: bool,
    /// Override requests, newest first.
    pub overrides: Vec<HoldOverride>,
}

/// One open alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// What kind.
    pub kind: AlertKind,
    /// Person number (or the obligation's incident for obligations).
    pub person: String,
    /// Facility code.
    pub facility: String,
    /// The date it concerns: the deadline, the release date, the day sent, the due day.
    pub date: NaiveDate,
    /// In words.
    pub detail: String,
    /// For a transfer not received: the facility that sent the person, whose staff see it too.
    #[serde(skip)]
    pub sent_from: Option<String>,
}

impl Alert {
    /// Whether staff who see the facilities `visible` accepts see this alert.
    pub fn seen_by(&self, visible: impl Fn(&str) -> bool) -> bool {
        visible(&self.facility) || self.sent_from.as_deref().is_some_and(visible)
    }
}

fn person_id<T: Tx>(tx: &mut T, number: &str) -> ServiceResult<PersonId> {
    tx.person_id(number)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: number.to_string() })
}

/// The current (or last) custody episode of a person.
fn booking_of<T: Tx>(tx: &mut T, number: &str) -> ServiceResult<(PersonId, i64)> {
    let person = person_id(tx, number)?;
    let booking = tx.custody_state(person)?.1.ok_or_else(|| {
        ServiceError::refused("legal.never_held", format!("{number} has never been in custody: nothing to attach"))
    })?;
    Ok((person, booking))
}

fn required(field: &str, text: &str) -> ServiceResult<()> {
    if text.trim().is_empty() {
        return Err(ServiceError::field(field, "is required"));
    }
    Ok(())
}

/// Record a charge inside the caller's transaction.
pub fn record_charge_in<T: Tx>(tx: &mut T, ctx: &Context, number: &str, c: &ChargeRequest) -> ServiceResult<()> {
    if c.max_penalty_years.is_some_and(|y| !(y > 0.0 && y <= 200.0)) {
        return Err(ServiceError::field("max_penalty_years", "must be a number of years above 0"));
    }
    crate::person_to_change(tx, number)?;
    let (_, booking) = booking_of(tx, number)?;
    let charge = Charge {
        offence: c.offence.to_string(),
        seriousness: c.seriousness,
        max_penalty_years: c.max_penalty_years,
        court_case: c.court_case.as_deref().map(str::to_string),
        recorded_at: ctx.now,
        recorded_by: ctx.actor.clone(),
    };
    tx.insert_charge(booking, &charge)?;
    audit(tx, ctx, "legal.charge", number, c)?;
    Ok(())
}

/// The most months one court extension of pretrial detention may add: more than any law the
/// rule sets describe allows, so a typing error (or 2,147,483,647) is refused.
pub const MAX_EXTENSION_MONTHS: u32 = 24;

/// Record a court record inside the caller's transaction.
pub fn record_court_in<T: Tx>(tx: &mut T, ctx: &Context, number: &str, c: &CourtRecordRequest) -> ServiceResult<()> {
    match (c.kind, c.months) {
        (CourtRecordKind::Extension, None | Some(0)) => {
            return Err(ServiceError::field("months", "an extension adds at least one month"))
        }
        (CourtRecordKind::Extension, Some(months)) if months > MAX_EXTENSION_MONTHS => {
            return Err(ServiceError::field(
                "months",
                format!("is {months}; one extension adds at most {MAX_EXTENSION_MONTHS} months"),
            ))
        }
        (CourtRecordKind::Extension, _) => {}
        (_, Some(_)) => return Err(ServiceError::field("months", "only extensions add months")),
        _ => {}
    }
    if c.kind == CourtRecordKind::Counsel {
        required("reference", c.reference.as_deref().unwrap_or(""))?;
    }
    crate::person_to_change(tx, number)?;
    let (_, booking) = booking_of(tx, number)?;
    let record = CourtRecord {
        kind: c.kind.as_str().to_string(),
        on_date: c.on,
        court: c.court.as_deref().map(str::to_string),
        reference: c.reference.as_deref().map(str::to_string),
        months: c.months,
        note: c.note.as_deref().map(str::to_string),
        recorded_at: ctx.now,
        recorded_by: ctx.actor.clone(),
    };
    tx.insert_court_record(booking, &record)?;
    audit(tx, ctx, "legal.court_record", number, c)?;
    Ok(())
}

/// Record the sentences of a person's current custody episode inside the caller's transaction;
/// their release date is computed (and explained) by the sentence calculator.
pub fn record_sentences_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    number: &str,
    input: &SentenceInput,
) -> ServiceResult<SentenceReport> {
    let report = crate::sentence::calculate(input)?.report();
    crate::person_to_change(tx, number)?;
    let (person, booking) = booking_of(tx, number)?;
    let text = serde_json::to_string(input).map_err(|e| ServiceError::Internal(e.to_string()))?;
    tx.insert_sentence_record(booking, &text, report.release_date, ctx.now, &ctx.actor)?;
    // Sentenced means convicted: the person's stay now carries that category (Mandela Rule 11).
    let facility = tx.person_facilities(person)?.first().copied().unwrap_or(0);
    let category = crate::housing::person_category(tx, person, facility, ctx.now)?;
    tx.set_stay_class(person, category.stay_class)?;
    audit(tx, ctx, "legal.sentences", number, input)?;
    Ok(report)
}

/// Record that a family was told of an admission or transfer, inside the caller's transaction.
pub fn record_family_notice_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    movement: i64,
    done: &NoticeDone,
) -> ServiceResult<()> {
    let at = done.at.unwrap_or(ctx.now);
    if at > ctx.now + chrono::Duration::minutes(5) {
        return Err(ServiceError::field("at", format!("{} is in the future", rfc3339(at))));
    }
    let (person, kind, _) = tx
        .movement_subject(movement)?
        .filter(|(_, kind, _)| kind == "admission" || kind == "transfer_out")
        .ok_or_else(|| ServiceError::NotFound { what: "admission or transfer", key: movement.to_string() })?;
    tx.insert_family_notice_done(movement, &done.notified, done.method.as_str(), at, &ctx.actor)?;
    let number = tx.person(person)?.map(|p| p.number).unwrap_or_default();
    audit(
        tx,
        ctx,
        "legal.family_notice",
        &number,
        &serde_json::json!({ "movement": movement, "event": kind, "done": done }),
    )?;
    Ok(())
}

/// Record a legal visit inside the caller's transaction.
pub fn record_legal_visit_in<T: Tx>(tx: &mut T, ctx: &Context, number: &str, v: &VisitRequest) -> ServiceResult<()> {
    if v.minutes == 0 || v.minutes > 24 * 60 {
        return Err(ServiceError::field("minutes", "must be between 1 and 1440"));
    }
    if v.started_at > ctx.now + chrono::Duration::minutes(5) {
        return Err(ServiceError::field("started_at", format!("{} is in the future", rfc3339(v.started_at))));
    }
    let person = crate::person_to_change(tx, number)?;
    let visit = LegalVisit {
        counsel: v.counsel.to_string(),
        capacity: v.capacity.to_string(),
        started_at: v.started_at,
        minutes: v.minutes,
        monitored: false,
        recorded_by: ctx.actor.clone(),
    };
    tx.insert_legal_visit(person, &visit)?;
    audit(tx, ctx, "legal.visit", number, v)?;
    Ok(())
}

/// Record a legal hold inside the caller's transaction.
pub fn add_hold_in<T: Tx>(tx: &mut T, ctx: &Context, number: &str, h: &HoldRequest) -> ServiceResult<HoldRecord> {
    match h.kind {
        HoldKind::DoNotRemove if h.country.is_none() => {
            return Err(ServiceError::field("country", "name the country removal to which is forbidden"))
        }
        HoldKind::ProduceAtCourt if h.on_date.is_none() => {
            return Err(ServiceError::field("on_date", "name the day the person must be produced at court"))
        }
        _ => {}
    }
    if h.expires_at.is_some_and(|e| e <= ctx.now) {
        return Err(ServiceError::field("expires_at", "is not in the future"));
    }
    let person = crate::person_to_change(tx, number)?;
    let id = tx.insert_hold(&NewHold {
        person,
        kind: h.kind,
        country: h.country.as_deref(),
        on_date: h.on_date,
        authority: &h.authority,
        order_reference: &h.order_reference,
        effective_from: ctx.now,
        expires_at: h.expires_at,
        recorded_by: &ctx.actor,
    })?;
    audit(tx, ctx, "legal.hold", number, h)?;
    tx.hold(id)?.ok_or_else(|| ServiceError::Internal("hold just written is missing".into()))
}

fn hold_in_force<T: Tx>(tx: &mut T, id: i64, now: Instant) -> ServiceResult<HoldRecord> {
    let hold = tx.hold(id)?.ok_or_else(|| ServiceError::NotFound { what: "legal hold", key: id.to_string() })?;
    if !hold.in_force(now) {
        return Err(ServiceError::refused("legal.hold_not_in_force", format!("hold {id} is not in force")));
    }
    Ok(hold)
}

/// Lift a hold inside the caller's transaction (when the court lifts its order).
pub fn end_hold_in<T: Tx>(tx: &mut T, ctx: &Context, id: i64, reason: &str) -> ServiceResult<HoldRecord> {
    required("reason", reason)?;
    let hold = hold_in_force(tx, id, ctx.now)?;
    tx.end_hold(id, ctx.now, reason, &ctx.actor)?;
    audit(tx, ctx, "legal.hold_end", &hold.person, &serde_json::json!({ "hold": id, "reason": reason }))?;
    tx.hold(id)?.ok_or_else(|| ServiceError::Internal("hold vanished".into()))
}

/// Ask to override a hold for one movement, inside the caller's transaction. It takes effect only
/// once a second authorised person approves it.
pub fn request_override_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    hold: i64,
    ask: &OverrideAsk,
) -> ServiceResult<HoldOverride> {
    required("reason", &ask.reason)?;
    let found = hold_in_force(tx, hold, ctx.now)?;
    let id = tx.insert_hold_override(hold, ask.movement.as_str(), &ask.reason, &ctx.actor, ctx.now)?;
    audit(tx, ctx, "legal.hold_override_request", &found.person, &serde_json::json!({ "hold": hold, "ask": ask }))?;
    override_view(tx, id)
}

fn override_view<T: Tx>(tx: &mut T, id: i64) -> ServiceResult<HoldOverride> {
    tx.hold_overrides(None)?
        .into_iter()
        .find(|o| o.id == id)
        .ok_or_else(|| ServiceError::NotFound { what: "hold override", key: id.to_string() })
}

/// Approve an override request inside the caller's transaction: by someone other than who asked.
pub fn approve_override_in<T: Tx>(tx: &mut T, ctx: &Context, id: i64) -> ServiceResult<HoldOverride> {
    let found = override_view(tx, id)?;
    if found.approved_by.is_some() {
        return Err(ServiceError::refused("legal.override_approved", format!("override {id} is already approved")));
    }
    if found.requested_by == ctx.actor {
        return Err(ServiceError::refused(
            "legal.override_same_person",
            format!("override {id} was asked for by {}; a second authorised person must approve it", ctx.actor),
        ));
    }
    let hold = hold_in_force(tx, found.hold, ctx.now)?;
    tx.approve_hold_override(id, &ctx.actor, ctx.now)?;
    audit(tx, ctx, "legal.hold_override_approval", &hold.person, &serde_json::json!({ "override": id }))?;
    override_view(tx, id)
}

/// Refuse a movement that an open hold forbids, naming the hold and the order, unless each such
/// hold has an approved, unused override for this kind of movement: their ids are returned, to be
/// marked used by the movement.
pub fn check_holds<T: Tx>(
    tx: &mut T,
    person: PersonId,
    movement: &Restricted<'_>,
    at: Instant,
    now: Instant,
) -> ServiceResult<Vec<i64>> {
    let mut overrides = Vec::new();
    // A movement dated in the past is checked against holds recorded since, too.
    for hold in tx.holds(Some(person))?.into_iter().filter(|h| h.in_force_during(at, now.max(at))) {
        let rule = Hold { kind: hold.kind, country: hold.country.clone(), on_date: hold.on_date };
        if !rule.forbids(movement, at.date_naive()) {
            continue;
        }
        let kind = OverriddenMovement::of(movement).as_str();
        let usable = tx.hold_overrides(Some(hold.id))?.into_iter().find(|o| {
            o.movement == kind
                && o.used_by_movement.is_none()
                && o.approved_at.is_some_and(|a| now - a <= chrono::Duration::hours(OVERRIDE_VALID_HOURS))
        });
        match usable {
            Some(o) => overrides.push(o.id),
            None => {
                let what = match (hold.kind, &hold.country, hold.on_date) {
                    (HoldKind::DoNotRemove, Some(country), _) => format!("do not remove to {country}"),
                    (HoldKind::ProduceAtCourt, _, Some(day)) => format!("produce at court on {day}"),
                    (kind, _, _) => kind.as_str().replace('_', " "),
                };
                return Err(ServiceError::refused(
                    "legal.hold",
                    format!(
                        "hold {} ({what}) ordered by {} in {} forbids this {kind}; an override needs a second authorised person",
                        hold.id, hold.authority, hold.order_reference
                    ),
                ));
            }
        }
    }
    Ok(overrides)
}

/// The legal status of a person from facts on record: convicted once sentences are recorded,
/// else the latest classification, else presumed from the legal basis.
fn legal_status(f: &PretrialFacts) -> LegalStatus {
    if f.sentenced {
        return LegalStatus::Convicted;
    }
    let basis = f.basis.as_str();
    f.classified_status.as_deref().and_then(LegalStatus::parse).unwrap_or_else(|| {
        let kind = match basis {
            "judgment" => LegalBasisKind::Judgment,
            "administrative_detention" => LegalBasisKind::AdministrativeDetention,
            _ => LegalBasisKind::RemandOrder,
        };
        LegalStatus::presumed_from(kind)
    })
}

/// Every open alert at `at` for the facilities `visible` accepts, by date.
pub fn alerts_in<T: Tx>(tx: &mut T, at: Instant, visible: &dyn Fn(&str) -> bool) -> ServiceResult<Vec<Alert>> {
    let mut alerts = Vec::new();
    // Per facility, once: its code, rule set (if known) and time zone.
    let mut places = std::collections::HashMap::new();
    let mut rule_sets: std::collections::HashMap<String, Option<RuleSet>> = std::collections::HashMap::new();
    for f in tx.facilities()? {
        if !rule_sets.contains_key(&f.jurisdiction) {
            let found = match rule_set_in(tx, &f.jurisdiction) {
                Ok(rules) => Some(rules),
                Err(ServiceError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            rule_sets.insert(f.jurisdiction.clone(), found);
        }
        let tz = f.time_zone.parse::<chrono_tz::Tz>().unwrap_or(chrono_tz::UTC);
        places.insert(f.id, (f.code, f.jurisdiction, tz));
    }
    for f in tx.pretrial_facts(None)? {
        let Some((code, jurisdiction, tz)) = places.get(&f.facility) else { continue };
        if !visible(code) || legal_status(&f) != LegalStatus::Untried {
            continue;
        }
        let Some(Some(rules)) = rule_sets.get(jurisdiction) else { continue };
        let detained_on = f.arrested_at.with_timezone(tz).date_naive();
        let today = at.with_timezone(tz).date_naive();
        let deadline = pretrial_deadline_day(rules, detained_on, f.seriousness, f.max_penalty_years, &f.extensions);
        if let Some(kind) = pretrial_alert(deadline, today) {
            let days = (deadline - today).num_days();
            let detail = if days < 0 {
                format!("held untried {} days past the pretrial deadline", -days)
            } else {
                format!("pretrial deadline in {days} days")
            };
            alerts.push(Alert {
                kind,
                person: f.number,
                facility: code.clone(),
                date: deadline,
                detail,
                sent_from: None,
            });
        }
    }
    for (number, facility, release) in tx.release_dates()? {
        let tz = places.values().find(|p| p.0 == facility).map(|p| p.2).unwrap_or(chrono_tz::UTC);
        let today = at.with_timezone(&tz).date_naive();
        if visible(&facility) && today > release {
            let detail = format!("held {} days past the release date", (today - release).num_days());
            let kind = AlertKind::ReleaseOverdue;
            alerts.push(Alert { kind, person: number, facility, date: release, detail, sent_from: None });
        }
    }
    for t in tx.in_transit()? {
        if !(visible(&t.from.0) || visible(&t.to)) {
            continue;
        }
        let rules = rule_sets.get(&t.from.1).and_then(Option::as_ref);
        let hours = rules.map(|r| r.period_on(t.since.date_naive()).transfer_alert_hours).unwrap_or(24);
        if at - t.since > chrono::Duration::hours(i64::from(hours)) {
            alerts.push(Alert {
                kind: AlertKind::TransferUnreceived,
                person: t.number,
                facility: t.to.clone(),
                date: t.since.date_naive(),
                detail: format!(
                    "sent from {} on {} and not received at {} within {hours} hours",
                    t.from.0,
                    rfc3339(t.since),
                    t.to
                ),
                sent_from: Some(t.from.0.clone()),
            });
        }
    }
    Ok(alerts)
}

impl<S: Store> Service<S> {
    /// Load a new version of a rule set from TOML text.
    pub fn load_rule_set(&self, ctx: &Context, text: &str) -> ServiceResult<RuleSet> {
        self.batch(|tx| load_rule_set_in(tx, ctx, text))
    }

    /// A jurisdiction's rule set.
    pub fn rule_set(&self, code: &str) -> ServiceResult<RuleSet> {
        rule_set_in(&mut self.store().read()?, code)
    }

    /// Record a charge.
    pub fn record_charge(&self, ctx: &Context, person: &str, charge: &ChargeRequest) -> ServiceResult<()> {
        self.batch(|tx| record_charge_in(tx, ctx, person, charge))
    }

    /// Record a hearing, the reasons given, counsel, a production order or an extension.
    pub fn record_court(&self, ctx: &Context, person: &str, record: &CourtRecordRequest) -> ServiceResult<()> {
        self.batch(|tx| record_court_in(tx, ctx, person, record))
    }

    /// Record a person's sentences; answers the release date and how it was reached.
    pub fn record_sentences(
        &self,
        ctx: &Context,
        person: &str,
        input: &SentenceInput,
    ) -> ServiceResult<SentenceReport> {
        self.batch(|tx| record_sentences_in(tx, ctx, person, input))
    }

    /// Record that a family was told of an admission or transfer.
    pub fn record_family_notice(&self, ctx: &Context, movement: i64, done: &NoticeDone) -> ServiceResult<()> {
        self.batch(|tx| record_family_notice_in(tx, ctx, movement, done))
    }

    /// The facility code of an admission or transfer, for scope checks.
    pub fn movement_facility(&self, movement: i64) -> ServiceResult<Option<String>> {
        Ok(self.store().read()?.movement_subject(movement)?.map(|m| m.2))
    }

    /// Admissions and transfers of the visible facilities since `since` whose family is not yet
    /// told (people who declined are left out), newest first.
    pub fn family_notices(
        &self,
        visible: impl Fn(&str) -> bool,
        since: Instant,
        limit: u32,
    ) -> ServiceResult<Vec<FamilyNotice>> {
        let mut tx = self.store().read()?;
        let ids: Vec<i64> = tx.facilities()?.into_iter().filter(|f| visible(&f.code)).map(|f| f.id).collect();
        Ok(tx.family_notices_open(&ids, since, limit)?)
    }

    /// Record a legal visit.
    pub fn record_legal_visit(&self, ctx: &Context, person: &str, visit: &VisitRequest) -> ServiceResult<()> {
        self.batch(|tx| record_legal_visit_in(tx, ctx, person, visit))
    }

    /// Record a legal hold.
    pub fn add_hold(&self, ctx: &Context, person: &str, hold: &HoldRequest) -> ServiceResult<HoldRecord> {
        self.batch(|tx| add_hold_in(tx, ctx, person, hold))
    }

    /// Lift a hold.
    pub fn end_hold(&self, ctx: &Context, hold: i64, reason: &str) -> ServiceResult<HoldRecord> {
        self.batch(|tx| end_hold_in(tx, ctx, hold, reason))
    }

    /// Ask to override a hold once.
    pub fn request_hold_override(&self, ctx: &Context, hold: i64, ask: &OverrideAsk) -> ServiceResult<HoldOverride> {
        self.batch(|tx| request_override_in(tx, ctx, hold, ask))
    }

    /// Approve an override (a second person).
    pub fn approve_hold_override(&self, ctx: &Context, id: i64) -> ServiceResult<HoldOverride> {
        self.batch(|tx| approve_override_in(tx, ctx, id))
    }

    /// Every hold with its overrides (of one person when given).
    pub fn holds(&self, person: Option<&str>, now: Instant) -> ServiceResult<Vec<HoldView>> {
        let mut tx = self.store().read()?;
        let id = person.map(|p| person_id(&mut tx, p)).transpose()?;
        let holds = tx.holds(id)?;
        holds
            .into_iter()
            .map(|hold| {
                Ok(HoldView { in_force: hold.in_force(now), overrides: tx.hold_overrides(Some(hold.id))?, hold })
            })
            .collect()
    }

    /// A person's legal situation: status, charges, court records, deadline, release date, holds.
    pub fn legal_record(&self, number: &str, now: Instant) -> ServiceResult<LegalRecord> {
        let mut tx = self.store().read()?;
        let (person, booking) = booking_of(&mut tx, number)?;
        let holds = self.holds(Some(number), now)?;
        let facts = tx.pretrial_facts(Some(person))?.into_iter().next();
        let legal_status = match &facts {
            Some(f) => legal_status(f),
            None => {
                let category = crate::housing::person_category(&mut tx, person, 0, now)?;
                category.category.status
            }
        };
        let pretrial = match facts.filter(|_| legal_status == LegalStatus::Untried) {
            Some(f) => {
                let facility = tx
                    .facility_by_id(f.facility)?
                    .ok_or_else(|| ServiceError::Internal("custody at a facility not on record".into()))?;
                let rules = rule_set_in(&mut tx, &facility.jurisdiction)?;
                let detained_on = local_day(f.arrested_at, &facility.time_zone);
                Some(pretrial_deadline(&rules, detained_on, f.seriousness, f.max_penalty_years, &f.extensions))
            }
            None => None,
        };
        let sentences = match tx.sentence_record(booking)? {
            Some((text, _)) => {
                let input: SentenceInput = serde_json::from_str(&text)
                    .map_err(|e| ServiceError::Internal(format!("stored sentences: {e}")))?;
                let calculation = crate::sentence::calculate(&input)?.report();
                Some(RecordedSentences { input, calculation })
            }
            None => None,
        };
        Ok(LegalRecord {
            person: number.to_string(),
            legal_status,
            charges: tx.charges(booking)?,
            court_records: tx.court_records(booking)?,
            pretrial,
            sentences,
            holds,
            legal_visits: tx.legal_visits(person)?,
        })
    }

    /// Every open alert at `at` for the facilities `visible` accepts: deadlines and release dates
    /// passed or near, transfers not received, and notification obligations overdue.
    pub fn alerts(&self, at: Instant, visible: impl Fn(&str) -> bool) -> ServiceResult<Vec<Alert>> {
        let mut alerts = alerts_in(&mut self.store().read()?, at, &visible)?;
        for o in self.obligations(crate::incident::ObligationState::Overdue, None, &visible, at)? {
            alerts.push(Alert {
                kind: AlertKind::ObligationOverdue,
                person: o.person.clone().unwrap_or_else(|| o.incident.clone()),
                facility: o.facility,
                date: o.due_at.date_naive(),
                detail: format!("obligation {} ({}, {}) was due {}", o.id, o.rule, o.incident, rfc3339(o.due_at)),
                sent_from: None,
            });
        }
        alerts.sort_by(|a, b| (a.date, a.kind, &a.person).cmp(&(b.date, b.kind, &b.person)));
        Ok(alerts)
    }
}
