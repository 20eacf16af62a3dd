//! Admissions and movements: the commands that change where a person is.

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use domain::custody::{apply, CustodyState, CustodyStatus, Movement, OutReason, Placement, ReleaseReason};
use domain::identity::{compare_documents, DocumentAgreement};
use domain::legal::Restricted;
use domain::person::{human_number, Admission};
use domain::text::{CountryCode, LongText, ShortText};
use domain::time::{rfc3339, Instant};
use store::{NewBooking, NewMovement, NewPerson, Store, Tx};

use crate::{audit, housing, legal, Context, Service, ServiceError, ServiceResult};

/// How far into the future a movement may be dated, to absorb clock differences between terminals.
const FUTURE_TOLERANCE_SECONDS: i64 = 300;

/// An admission to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdmitRequest {
    /// Code of the admitting facility.
    pub facility: String,
    /// Number of a person already on record (a new custody episode); a new person when absent.
    #[serde(default)]
    pub person: Option<String>,
    /// When the admission happened; the time of recording when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub at: Option<Instant>,
    /// Set when the person is received from a foreign authority (a deportee, an extradited person).
    #[serde(default)]
    pub foreign: Option<ForeignReception>,
    /// Set when an identity document of this admission is on record for a person not in custody
    /// who is not this person (a reused or forged number): why, in words; audited.
    #[serde(default)]
    pub different_person: Option<DifferentPerson>,
    /// The Mandela Rule 7 record.
    #[serde(flatten)]
    pub admission: Admission,
}

/// The declaration that a person whose document is on record for someone else is another person.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DifferentPerson {
    /// Why the records officer is sure this is not the person on record.
    pub reason: LongText,
}

/// A person received from a foreign authority: who hands them over, and how their identity was
/// checked against their documents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForeignReception {
    /// The authority handing the person over.
    pub authority: ShortText,
    /// ISO code of its country.
    pub country: CountryCode,
    /// How the identity was checked.
    pub identity_check: IdentityCheck,
}

/// The check of a received person's identity against their documents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityCheck {
    /// How: fingerprints, document inspection, photograph comparison…
    pub method: ShortText,
    /// Who checked.
    pub checked_by: ShortText,
    /// The person is who the documents say.
    pub confirmed: bool,
}

impl ForeignReception {
    /// Receiving from a foreign authority needs identity documents, a transfer agreement as legal
    /// basis and a confirmed identity check.
    fn check(&self, admission: &Admission) -> ServiceResult<()> {
        let mut errors = Vec::new();
        if admission.identity.documents.is_empty() {
            errors.push(domain::FieldError::new(
                "identity.documents",
                "a person received from a foreign authority needs identity documents",
            ));
        }
        if admission.legal_basis.as_ref().is_some_and(|b| b.kind != domain::person::LegalBasisKind::TransferAgreement) {
            errors.push(domain::FieldError::new(
                "legal_basis.kind",
                "a person received from a foreign authority is held under a transfer agreement",
            ));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        if !self.identity_check.confirmed {
            return Err(ServiceError::refused(
                "legal.identity_unconfirmed",
                "the identity check did not confirm that the person is who the documents say; do not admit until it does",
            ));
        }
        Ok(())
    }
}

impl AdmitRequest {
    /// Parse a request from JSON text, naming the field of any error (`identity.date_of_birth: …`).
    /// The admission record is read apart from the envelope so that its errors keep their path.
    pub fn from_json(text: &str) -> ServiceResult<Self> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Envelope {
            facility: String,
            #[serde(default)]
            person: Option<String>,
            #[serde(default)]
            at: Option<Instant>,
            #[serde(default)]
            foreign: Option<ForeignReception>,
            #[serde(default)]
            different_person: Option<DifferentPerson>,
        }
        fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> ServiceResult<T> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                ServiceError::field(if path == "." { "admission".to_string() } else { path }, e.inner().to_string())
            })
        }
        let mut value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ServiceError::field("admission", format!("is not valid JSON: {e}")))?;
        let record = value.as_object_mut().ok_or_else(|| ServiceError::field("admission", "must be a JSON object"))?;
        let envelope: serde_json::Map<String, serde_json::Value> =
            ["facility", "person", "at", "foreign", "different_person"]
                .iter()
                .filter_map(|k| record.remove_entry(*k))
                .collect();
        let envelope: Envelope = parse(serde_json::Value::Object(envelope))?;
        let admission: Admission = parse(value)?;
        Ok(Self {
            facility: envelope.facility,
            person: envelope.person,
            at: envelope.at,
            foreign: envelope.foreign,
            different_person: envelope.different_person,
            admission,
        })
    }
}

/// What an admission created.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Admitted {
    /// The person's number.
    pub person: String,
    /// The new booking's number.
    pub booking: String,
    /// Medical-examination tasks opened.
    pub medical_tasks: usize,
    /// Audit event.
    pub audit_seq: i64,
}

/// A movement to record, with places named by code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MovementKind {
    /// First placement after admission or receipt.
    Place {
        /// Cell code in the person's facility.
        cell: String,
        /// Bed code in that cell.
        #[serde(default)]
        bed: Option<String>,
    },
    /// Move to another cell or bed.
    Move {
        /// Cell code in the person's facility.
        cell: String,
        /// Bed code in that cell.
        #[serde(default)]
        bed: Option<String>,
    },
    /// Leave the facility for a while.
    Out {
        /// court, hospital, temporary_absence or escort.
        reason: OutReason,
    },
    /// Come back.
    Return,
    /// Send to another facility.
    Transfer {
        /// Code of the receiving facility.
        to: String,
    },
    /// Receive at the destination of a transfer.
    Receive {
        /// Code of the receiving facility.
        facility: String,
    },
    /// End custody.
    Release {
        /// Why.
        reason: ReleaseReason,
        /// ISO code of the country the person is handed to (removal, deportation, extradition);
        /// checked against every hold.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_country: Option<String>,
    },
}

/// A movement request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovementRequest {
    /// Person number.
    pub person: String,
    /// What happens.
    #[serde(flatten)]
    pub kind: MovementKind,
    /// When it happened; the time of recording when absent.
    #[serde(default)]
    pub at: Option<Instant>,
    /// Free-text note.
    #[serde(default)]
    pub note: Option<LongText>,
}

/// A recorded movement.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MovementRecorded {
    /// Person number.
    pub person: String,
    /// Movement kind.
    pub kind: &'static str,
    /// When it happened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: Instant,
    /// The director's override that allowed a placement over the capacity line, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_override: Option<i64>,
    /// Audit event.
    pub audit_seq: i64,
}

fn occurred_at(ctx: &Context, at: Option<Instant>) -> ServiceResult<Instant> {
    let at = at.unwrap_or(ctx.now);
    if at > ctx.now + chrono::Duration::seconds(FUTURE_TOLERANCE_SECONDS) {
        return Err(ServiceError::field("at", format!("{} is in the future", rfc3339(at))));
    }
    Ok(at)
}

fn refuse(e: domain::custody::MovementRefused) -> ServiceError {
    ServiceError::refused("custody.sequence", e.to_string())
}

/// Admit a person inside the caller's transaction. Every check runs before the first write.
pub fn admit_in<T: Tx>(tx: &mut T, ctx: &Context, request: &AdmitRequest) -> ServiceResult<Admitted> {
    let at = occurred_at(ctx, request.at)?;
    let admission = &request.admission;
    admission.validate(at).map_err(ServiceError::Invalid)?;
    if let Some(foreign) = &request.foreign {
        foreign.check(admission)?;
    }
    let facility = facility_open_at(tx, &request.facility, at)?;
    let known = match &request.person {
        Some(number) => {
            let id = crate::person_to_change(tx, number)?;
            let person =
                tx.person(id)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: number.clone() })?;
            same_identity(&person, &admission.identity)?;
            Some(person)
        }
        None => None,
    };
    check_documents(tx, ctx, request, known.as_ref().map(|p| p.id))?;
    let state = match &known {
        Some(person) => {
            housing::check_facility_entry(tx, ctx, person.id, facility.id, at)?;
            tx.custody_state(person.id)?.0
        }
        None => CustodyState::FREE,
    };
    let movement = Movement::Admission { facility: facility.id };
    let after = apply(state, movement, at).map_err(refuse)?;

    let (person_id, person_number) = match known {
        Some(person) => {
            // Documents not seen before (a new passport) are added to the record.
            for document in admission.identity.documents.iter().filter(|d| !person.identity.documents.contains(d)) {
                tx.insert_identity_document(person.id, document)?;
            }
            (person.id, person.number)
        }
        None => {
            let prefix = facility.jurisdiction.to_ascii_uppercase();
            let sequence = tx.next_counter(&format!("person:{}", at.year()))?;
            let number = human_number(&prefix, at.year(), sequence);
            let id = tx.insert_person(&NewPerson { number: &number, identity: &admission.identity })?;
            (id, number)
        }
    };
    let sequence = tx.next_counter(&format!("booking:{}:{}", facility.code, at.year()))?;
    let booking_number = human_number(&facility.code, at.year(), sequence);
    let booking = tx.insert_booking(&NewBooking {
        number: &booking_number,
        person: person_id,
        facility: facility.id,
        admission,
        admitted_at: at,
    })?;
    let reasons = admission.medical_examination_reasons();
    for reason in &reasons {
        tx.insert_medical_task(booking, reason, at)?;
    }
    tx.record_movement(
        &NewMovement {
            person: person_id,
            booking,
            movement,
            facility: facility.id,
            unit: None,
            note: None,
            occurred_at: at,
            recorded_at: ctx.now,
            actor: &ctx.actor,
            stay_class: None,
        },
        &after,
    )?;
    let audit_seq = audit(tx, ctx, "person.admit", &person_number, request)?;
    Ok(Admitted { person: person_number, booking: booking_number, medical_tasks: reasons.len(), audit_seq })
}

/// An identity document on record says who the person is. One held now (anywhere) is not
/// admitted a second time; one on record but not held must be re-admitted under their number, or
/// declared a different person with a reason. Inside the writing transaction, so that of two
/// admissions with the same document at once only the first can succeed.
fn check_documents<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    request: &AdmitRequest,
    known: Option<store::PersonId>,
) -> ServiceResult<()> {
    for (i, document) in request.admission.identity.documents.iter().enumerate() {
        let mut holders = Vec::new();
        for number in crate::identity::number_spellings(&document.number) {
            for (holder, recorded) in tx.people_with_document(&number)? {
                let same = compare_documents(std::slice::from_ref(document), std::slice::from_ref(&recorded));
                if matches!(same, Some(DocumentAgreement::Same(_))) {
                    holders.push(crate::identity::survivor_of(tx, holder)?.0);
                }
            }
        }
        holders.sort_unstable();
        holders.dedup();
        for holder in holders.into_iter().filter(|h| Some(*h) != known) {
            let shown = format!("identity.documents[{i}] ({} {})", document.kind, document.number);
            let person =
                tx.person(holder)?.ok_or_else(|| ServiceError::Internal(format!("person {holder} vanished")))?;
            let held_at = match tx.custody_state(holder)?.0.status {
                CustodyStatus::Free => None,
                CustodyStatus::Held { facility, .. } | CustodyStatus::InTransit { to: facility, .. } => {
                    Some(tx.facility_by_id(facility)?.map(|f| f.code).unwrap_or_default())
                }
            };
            if let Some(code) = held_at {
                let detail = if ctx.sees(&code) {
                    format!("{shown} is {}'s, who is in custody at {code} now; one person is held once", person.number)
                } else {
                    format!("{shown} belongs to a person in custody elsewhere now; one person is held once")
                };
                return Err(ServiceError::refused("custody.already_in_custody", detail));
            }
            if request.different_person.is_some() {
                continue;
            }
            let on_record = if crate::person_visible(tx, ctx, holder)? {
                format!("{shown} is on record for {}: re-admit that person (`person`)", person.number)
            } else {
                format!("{shown} is on record for a person held before elsewhere: ask national records staff to re-admit them")
            };
            return Err(ServiceError::refused(
                "identity.document_on_record",
                format!("{on_record}, or, if this is someone else, say why in `different_person.reason`"),
            ));
        }
    }
    Ok(())
}

/// A known person is re-admitted under the identity on record; a different one is refused
/// rather than silently dropped (identity corrections are separate, audited entries).
fn same_identity(person: &store::Person, given: &domain::person::Identity) -> ServiceResult<()> {
    let recorded = &person.identity;
    let mut errors = Vec::new();
    let mut differs = |field: &str, same: bool| {
        if !same {
            errors.push(domain::FieldError::new(
                format!("identity.{field}"),
                format!("differs from the record of {}; correct the identity first", person.number),
            ));
        }
    };
    differs("given_names", recorded.name.given_names == given.name.given_names);
    differs("first_surname", recorded.name.first_surname == given.name.first_surname);
    differs("second_surname", recorded.name.second_surname == given.name.second_surname);
    differs("date_of_birth", recorded.date_of_birth == given.date_of_birth);
    differs("sex", recorded.sex == given.sex);
    differs("nationality", recorded.nationality == given.nationality);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

/// The movement with its places not yet looked up: enough for the state machine to say whether
/// such a movement is possible at all, before any cell or facility code is resolved.
fn unresolved(kind: &MovementKind, state: &CustodyState) -> Movement {
    let nowhere = Placement { cell: -1, bed: None };
    match kind {
        MovementKind::Place { .. } => Movement::Placement(nowhere),
        MovementKind::Move { .. } => Movement::CellMove(nowhere),
        MovementKind::Out { reason } => Movement::Out { reason: *reason },
        MovementKind::Return => Movement::Return,
        MovementKind::Transfer { .. } => Movement::TransferOut { to: -1 },
        MovementKind::Receive { .. } => match state.status {
            CustodyStatus::InTransit { to, .. } => Movement::Receipt { facility: to },
            _ => Movement::Receipt { facility: -1 },
        },
        MovementKind::Release { reason, .. } => Movement::Release { reason: *reason },
    }
}

/// Record a movement inside the caller's transaction.
pub fn record_movement_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    request: &MovementRequest,
) -> ServiceResult<MovementRecorded> {
    let at = occurred_at(ctx, request.at)?;
    let person = crate::person_to_change(tx, &request.person)?;
    let (state, booking) = tx.custody_state(person)?;
    // The person's state first: "is out at court" says more than "cell not found".
    apply(state, unresolved(&request.kind, &state), at).map_err(refuse)?;
    let (Some(booking), CustodyStatus::Held { facility: here, .. } | CustodyStatus::InTransit { from: here, .. }) =
        (booking, state.status)
    else {
        return Err(ServiceError::Internal("a movement was possible for a person not in custody".into()));
    };
    let mut unit = None;
    let mut facility = here;
    let mut allowed = None;
    let movement = match &request.kind {
        MovementKind::Place { cell, bed } | MovementKind::Move { cell, bed } => {
            let (placement, cell_unit, housing) =
                resolve_placement(tx, here, cell, bed.as_deref(), at, ctx.now, person)?;
            unit = Some(cell_unit);
            allowed = Some(housing);
            match request.kind {
                MovementKind::Place { .. } => Movement::Placement(placement),
                _ => Movement::CellMove(placement),
            }
        }
        MovementKind::Transfer { to } => {
            let to = facility_open_at(tx, to, at)?.id;
            housing::check_facility_entry(tx, ctx, person, to, at)?;
            Movement::TransferOut { to }
        }
        MovementKind::Receive { facility: code } => {
            facility = facility_open_at(tx, code, at)?.id;
            housing::check_facility_entry(tx, ctx, person, facility, at)?;
            Movement::Receipt { facility }
        }
        other => unresolved(other, &state),
    };
    let after = apply(state, movement, at).map_err(refuse)?;
    // A court's hold forbids some movements unless two people approved an override.
    let restricted = match &request.kind {
        MovementKind::Transfer { .. } => Some(Restricted::Transfer),
        MovementKind::Release { to_country: Some(country), .. } => Some(Restricted::Removal { country }),
        MovementKind::Release { .. } => Some(Restricted::Release),
        _ => None,
    };
    let overrides = match &restricted {
        Some(r) => legal::check_holds(tx, person, r, at, ctx.now)?,
        None => Vec::new(),
    };
    let movement_id = tx.record_movement(
        &NewMovement {
            person,
            booking,
            movement,
            facility,
            unit,
            note: request.note.as_deref(),
            occurred_at: at,
            recorded_at: ctx.now,
            actor: &ctx.actor,
            stay_class: allowed.map(|a| a.stay_class),
        },
        &after,
    )?;
    for id in overrides {
        tx.use_hold_override(id, movement_id)?;
    }
    let kind = movement.kind();
    let capacity_override = allowed.and_then(|a| a.capacity_override);
    let action = format!("movement.{kind}");
    let audit_seq = match capacity_override {
        // The override that let the cell go over the line is named in the placement's own event.
        Some(id) => audit(
            tx,
            ctx,
            &action,
            &request.person,
            &serde_json::json!({ "movement": request, "capacity_override": id }),
        )?,
        None => audit(tx, ctx, &action, &request.person, request)?,
    };
    Ok(MovementRecorded { person: request.person.clone(), kind, occurred_at: at, capacity_override, audit_seq })
}

/// Refuse to go on unless the person's record is still at `expected` (the id of their latest
/// movement when the clerk read it): two clerks cannot silently record over each other.
pub fn expect_version<T: Tx>(tx: &mut T, number: &str, expected: i64) -> ServiceResult<()> {
    let person = tx.person_id(number)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: number.into() })?;
    if tx.latest_movement(person)? != expected {
        return Err(ServiceError::refused(
            "record.stale",
            "the person's record changed since it was read; read it again",
        ));
    }
    Ok(())
}

/// The facility by code, if it is on record at `at`.
fn facility_open_at<T: Tx>(tx: &mut T, code: &str, at: Instant) -> ServiceResult<store::Facility> {
    let facility =
        tx.facility_by_code(code)?.ok_or_else(|| ServiceError::NotFound { what: "facility", key: code.to_string() })?;
    if at < facility.effective_from {
        return Err(ServiceError::refused(
            "estate.not_open",
            format!("facility {} is on record only from {}", facility.code, rfc3339(facility.effective_from)),
        ));
    }
    Ok(facility)
}

/// Find the cell (and bed) by code in the person's facility and check it can take them at `at`.
fn resolve_placement<T: Tx>(
    tx: &mut T,
    facility: i64,
    cell_code: &str,
    bed_code: Option<&str>,
    at: Instant,
    now: Instant,
    person: i64,
) -> ServiceResult<(Placement, i64, housing::PlacementAllowed)> {
    let cell = tx
        .cell_by_code(facility, cell_code, at)?
        .ok_or_else(|| ServiceError::NotFound { what: "cell in the person's facility", key: cell_code.to_string() })?;
    // A placement lasts until the next movement: the cell must be in use at `at` and stay so.
    let out_of_order =
        if cell.in_use { tx.cell_out_of_order_after(cell.id, at)? } else { cell.out_of_order_reason.clone() };
    if !cell.in_use || out_of_order.is_some() {
        let reason = out_of_order.unwrap_or_else(|| "no reason given".into());
        let when = if cell.in_use { " later" } else { "" };
        return Err(ServiceError::refused(
            "estate.cell_out_of_order",
            format!("cell {} is out of order{when}: {reason}", cell.code),
        ));
    }
    if cell.dimensions.single {
        // Anyone else placed there from `at` on, including placements recorded later but dated after `at`.
        if let Some(other) = tx.cell_holders_from(cell.id, at)?.into_iter().find(|p| *p != person) {
            let number = tx.person(other)?.map(|p| p.number).unwrap_or_default();
            return Err(ServiceError::refused(
                "estate.single_cell",
                format!("cell {} is a single cell and {number} is placed in it", cell.code),
            ));
        }
    }
    let bed = match bed_code {
        None => None,
        Some(code) => {
            let bed = tx.bed_by_code(cell.id, code)?.ok_or_else(|| ServiceError::NotFound {
                what: "bed in that cell",
                key: format!("{}/{code}", cell.code),
            })?;
            if let Some(holder) = tx.bed_holder_from(bed.id, at)? {
                if holder != person {
                    let number = tx.person(holder)?.map(|p| p.number).unwrap_or_default();
                    return Err(ServiceError::refused(
                        "estate.bed_taken",
                        format!("bed {code} of cell {} is already taken by {number}", cell.code),
                    ));
                }
            }
            Some(bed.id)
        }
    };
    let allowed = housing::check_placement(tx, person, &cell, at, now)?;
    Ok((Placement { cell: cell.id, bed }, cell.unit, allowed))
}

impl<S: Store> Service<S> {
    /// Admit a person. No legal basis, no admission; every problem is listed; nothing is written on refusal.
    pub fn admit(&self, ctx: &Context, request: &AdmitRequest) -> ServiceResult<Admitted> {
        self.batch(|tx| admit_in(tx, ctx, request))
    }

    /// Record a movement. Impossible sequences are refused with the reason; nothing is written then.
    pub fn record_movement(&self, ctx: &Context, request: &MovementRequest) -> ServiceResult<MovementRecorded> {
        self.batch(|tx| record_movement_in(tx, ctx, request))
    }
}
