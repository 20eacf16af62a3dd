//! Movements across the gate (out to court or hospital, return, transfer, receipt, release) and
//! the holds that can stop them, with the two-person override a hold needs.

use askama::Template;
use axum::extract::{Extension, Form, Path, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use domain::custody::{OutReason, ReleaseReason};
use service::custody::{MovementKind, MovementRequest};
use service::legal::{HoldView, OverriddenMovement, OverrideAsk};
use service::report::PersonScope;
use store::Whereabouts;

use super::{page, page_status, Chrome, Refusal, Ui, UiError, UiResult};
use crate::access::may_record;
use crate::problem::ApiError;
use crate::request::{in_scope, log_read, person_in_scope};
use crate::AppState;

const OUT_REASONS: &[(&str, OutReason)] = &[
    ("court", OutReason::Court),
    ("hospital", OutReason::Hospital),
    ("temporary_absence", OutReason::TemporaryAbsence),
    ("escort", OutReason::Escort),
];

const RELEASE_REASONS: &[(&str, ReleaseReason)] = &[
    ("sentence_served", ReleaseReason::SentenceServed),
    ("bail", ReleaseReason::Bail),
    ("acquittal", ReleaseReason::Acquittal),
    ("charges_dropped", ReleaseReason::ChargesDropped),
    ("court_order", ReleaseReason::CourtOrder),
    ("pardon", ReleaseReason::Pardon),
    ("handed_over", ReleaseReason::HandedOver),
    ("death", ReleaseReason::Death),
];

const OVERRIDABLE: &[(&str, OverriddenMovement)] = &[
    ("transfer", OverriddenMovement::Transfer),
    ("release", OverriddenMovement::Release),
    ("removal", OverriddenMovement::Removal),
];

#[derive(Deserialize, Default, Clone)]
pub(crate) struct MovementForm {
    kind: String,
    out_reason: Option<String>,
    to: Option<String>,
    release_reason: Option<String>,
    to_country: Option<String>,
    at: Option<String>,
    note: Option<String>,
    /// The form's one-time key.
    key: Option<String>,
}

#[derive(Template)]
#[template(path = "movement.html")]
struct MovementPage {
    chrome: Chrome,
    number: String,
    name: String,
    whereabouts: Option<Whereabouts>,
    /// The kinds this caller may record for this person now: (value, label).
    kinds: Vec<(&'static str, &'static str)>,
    out_reasons: Vec<&'static str>,
    release_reasons: Vec<&'static str>,
    overridable: Vec<&'static str>,
    facilities: Vec<String>,
    holds: Vec<HoldView>,
    may_ask: bool,
    may_approve: bool,
    me: String,
    form: MovementForm,
    refusal: Option<Refusal>,
    /// One-time keys of the forms on the page.
    key: String,
}

/// The kinds a role may record, given where the person is and which facilities the caller has.
fn kinds_for(ui: &Ui, scope: &PersonScope, whereabouts: Option<&Whereabouts>) -> Vec<(&'static str, &'static str)> {
    let holding = scope.facilities.first().is_some_and(|f| ui.staff().sees(f));
    let in_transit = whereabouts.is_some_and(|w| w.facility.is_none());
    let out = whereabouts.is_some_and(|w| w.out.is_some());
    let role = ui.role();
    let mut kinds = Vec::new();
    let mut offer = |value, label, kind: MovementKind| {
        if may_record(role, &kind) {
            kinds.push((value, label));
        }
    };
    let placeholder = || "-".to_string();
    if whereabouts.is_some() && holding && !in_transit {
        if out {
            offer("return", "return to the facility", MovementKind::Return);
        } else {
            offer("out", "out of the facility (court, hospital…)", MovementKind::Out { reason: OutReason::Court });
        }
        offer("transfer", "transfer to another facility", MovementKind::Transfer { to: placeholder() });
        let release = MovementKind::Release { reason: ReleaseReason::Bail, to_country: None };
        offer("release", "release", release);
    }
    // Only the destination receives (it is listed after the sender while the person travels).
    if in_transit && scope.facilities.iter().skip(1).any(|f| ui.staff().sees(f)) {
        offer("receive", "receive at the destination", MovementKind::Receive { facility: placeholder() });
    }
    kinds
}

async fn movement_page(
    state: &AppState,
    ui: &Ui,
    number: &str,
    scope: &PersonScope,
    form: MovementForm,
    refusal: Option<Refusal>,
) -> UiResult<MovementPage> {
    // The page shows where the person is and their holds: a read of their record.
    log_read(state, &ui.caller, number, "GET /people/{number}/movement").await?;
    let now = chrono::Utc::now();
    let (record, holds, facilities) = {
        let number = number.to_string();
        state.run(move |s| Ok((s.person_record(&number, now)?, s.holds(Some(&number), now)?, s.facilities()?))).await?
    };
    Ok(MovementPage {
        chrome: ui.chrome(""),
        number: number.to_string(),
        name: record.person.identity.name.full(),
        kinds: kinds_for(ui, scope, record.whereabouts.as_ref()),
        whereabouts: record.whereabouts,
        out_reasons: OUT_REASONS.iter().map(|(code, _)| *code).collect(),
        release_reasons: RELEASE_REASONS.iter().map(|(code, _)| *code).collect(),
        overridable: OVERRIDABLE.iter().map(|(code, _)| *code).collect(),
        facilities: facilities.into_iter().map(|f| f.code).collect(),
        holds: holds.into_iter().filter(|h| h.in_force).collect(),
        may_ask: ui.may("POST", "/people/{number}/holds/{id}/overrides"),
        may_approve: ui.may("POST", "/people/{number}/hold-overrides/{id}/approval"),
        me: ui.staff().name.clone(),
        key: form.key.clone().filter(|k| !k.is_empty()).unwrap_or_else(super::random_token),
        form,
        refusal,
    })
}

pub(crate) async fn form(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(number): Path<String>,
) -> UiResult {
    let scope = person_in_scope(&state, &ui.caller, &number).await?;
    // A person in transit: the destination is the facility that receives.
    let form = MovementForm { to: scope.facilities.get(1).cloned(), ..MovementForm::default() };
    page(movement_page(&state, &ui, &number, &scope, form, None).await?)
}

/// The movement the form describes; times are the facility's local time.
async fn movement_of(
    state: &AppState,
    number: &str,
    form: &MovementForm,
    holding: &str,
) -> Result<MovementRequest, ApiError> {
    let invalid = |field: &str, problem: &str| ApiError::validation(vec![domain::FieldError::new(field, problem)]);
    let chosen = |value: &Option<String>| value.clone().unwrap_or_default().trim().to_string();
    let kind = match form.kind.as_str() {
        "out" => {
            let reason = OUT_REASONS.iter().find(|(code, _)| *code == chosen(&form.out_reason)).map(|(_, r)| *r);
            MovementKind::Out { reason: reason.ok_or_else(|| invalid("out_reason", "choose why the person goes out"))? }
        }
        "return" => MovementKind::Return,
        "transfer" => MovementKind::Transfer { to: chosen(&form.to) },
        "receive" => MovementKind::Receive { facility: chosen(&form.to) },
        "release" => {
            let reason =
                RELEASE_REASONS.iter().find(|(code, _)| *code == chosen(&form.release_reason)).map(|(_, r)| *r);
            MovementKind::Release {
                reason: reason.ok_or_else(|| invalid("release_reason", "choose why the person is released"))?,
                to_country: Some(chosen(&form.to_country).to_uppercase()).filter(|c| !c.is_empty()),
            }
        }
        _ => return Err(invalid("kind", "choose a movement")),
    };
    let place = match &kind {
        MovementKind::Receive { facility } => facility.as_str(),
        _ => holding,
    };
    let zone = super::zone_of(state, place).await?;
    let at = match form.at.as_deref().filter(|a| !a.trim().is_empty()) {
        Some(text) => Some(super::form_instant("at", Some(text), zone)?),
        None => None,
    };
    Ok(MovementRequest { person: number.to_string(), kind, at, note: super::form_optional("note", form.note.clone())? })
}

/// Record a movement with the same checks as the API: the role may record that kind, the
/// holding facility (the destination for a receipt) is the caller's, and every hold applies.
pub(crate) async fn record(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(number): Path<String>,
    Form(form): Form<MovementForm>,
) -> UiResult {
    let scope = person_in_scope(&state, &ui.caller, &number).await?;
    let holding = scope.facilities.first().cloned().unwrap_or_default();
    let recorded = match movement_of(&state, &number, &form, &holding).await {
        Ok(request) => {
            let allowed = if !may_record(ui.role(), &request.kind) {
                Err(ApiError::forbidden(format!("the {} role may not record this movement", ui.role().as_str())))
            } else {
                match &request.kind {
                    MovementKind::Receive { facility } => {
                        in_scope(&ui.caller, std::slice::from_ref(facility), "facility", facility)
                    }
                    _ => in_scope(&ui.caller, std::slice::from_ref(&holding), "person", &number),
                }
            };
            match allowed {
                Ok(()) => {
                    let ctx = ui.staff().context(chrono::Utc::now());
                    let text = serde_json::to_string(&request).map_err(ApiError::internal)?;
                    let key = form.key.clone().unwrap_or_default();
                    super::once(&state, &ui, &key, text, move |tx| {
                        service::custody::record_movement_in(tx, &ctx, &request)
                    })
                    .await
                    .map(|_| ())
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match recorded {
        Ok(()) => Ok(Redirect::to(&format!("/people/{}", super::urlencode(&number))).into_response()),
        Err(e) if e.status().is_client_error() => {
            let refusal = Some(Refusal::of(&e));
            page_status(e.status(), movement_page(&state, &ui, &number, &scope, form, refusal).await?)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct AskForm {
    movement: String,
    reason: String,
    key: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct KeyForm {
    key: Option<String>,
}

/// Someone asks for an override of a hold for one movement; a different director approves it.
pub(crate) async fn ask_override(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path((number, hold)): Path<(String, i64)>,
    Form(ask): Form<AskForm>,
) -> UiResult {
    let scope = person_in_scope(&state, &ui.caller, &number).await?;
    hold_of(&state, &number, |h| h.hold.id == hold).await?;
    let movement = OVERRIDABLE.iter().find(|(code, _)| *code == ask.movement).map(|(_, m)| *m);
    let result = match movement {
        None => Err(ApiError::validation(vec![domain::FieldError::new("movement", "is transfer, release or removal")])),
        Some(movement) => {
            let ctx = ui.staff().context(chrono::Utc::now());
            let key = ask.key.unwrap_or_default();
            let ask = OverrideAsk { movement, reason: super::form_text("reason", ask.reason)? };
            let text = format!("hold {hold} {}", serde_json::to_string(&ask).map_err(ApiError::internal)?);
            super::once(&state, &ui, &key, text, move |tx| service::legal::request_override_in(tx, &ctx, hold, &ask))
                .await
                .map(|_| ())
        }
    };
    back_to_movement(&state, &ui, &number, &scope, result).await
}

pub(crate) async fn approve_override(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path((number, id)): Path<(String, i64)>,
    Form(form): Form<KeyForm>,
) -> UiResult {
    let scope = person_in_scope(&state, &ui.caller, &number).await?;
    hold_of(&state, &number, |h| h.overrides.iter().any(|o| o.id == id)).await?;
    let ctx = ui.staff().context(chrono::Utc::now());
    let key = form.key.unwrap_or_default();
    let result = super::once(&state, &ui, &key, format!("approve {id}"), move |tx| {
        service::legal::approve_override_in(tx, &ctx, id)
    })
    .await
    .map(|_| ());
    back_to_movement(&state, &ui, &number, &scope, result).await
}

/// A hold (or override) of this person's, or not found: the path names the person, so that the
/// caller's scope over the person covers the hold.
async fn hold_of(state: &AppState, number: &str, wanted: impl Fn(&HoldView) -> bool) -> UiResult<()> {
    let holds = {
        let number = number.to_string();
        state.run(move |s| s.holds(Some(&number), chrono::Utc::now())).await?
    };
    if holds.iter().any(wanted) {
        Ok(())
    } else {
        Err(UiError::not_found("hold of this person", number))
    }
}

async fn back_to_movement(
    state: &AppState,
    ui: &Ui,
    number: &str,
    scope: &PersonScope,
    result: Result<(), ApiError>,
) -> UiResult {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/people/{}/movement", super::urlencode(number))).into_response()),
        Err(e) if e.status().is_client_error() => {
            let refusal = Some(Refusal::of(&e));
            page_status(e.status(), movement_page(state, ui, number, scope, MovementForm::default(), refusal).await?)
        }
        Err(e) => Err(e.into()),
    }
}
