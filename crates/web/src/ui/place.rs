//! Place or move a person: choose a cell; a refusal names the rule; a director may lift the
//! capacity line with a recorded override.

use askama::Template;
use axum::extract::{Extension, Form, Path, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use service::custody::{MovementKind, MovementRequest};
use service::housing::{OverrideRequest, PlacementOption};

use super::{page, page_status, Chrome, Refusal, Ui, UiError, UiResult};
use crate::problem::ApiError;
use crate::request::{in_scope, log_read, person_in_scope};
use crate::AppState;

#[derive(Template)]
#[template(path = "place.html")]
struct PlacePage {
    chrome: Chrome,
    number: String,
    name: String,
    facility: String,
    current: Option<String>,
    typed: Typed,
    options: Vec<PlacementOption>,
    refused: Vec<PlacementOption>,
    refusal: Option<Refusal>,
    may_override: bool,
    /// One-time keys of the page's forms.
    key: String,
}

/// What was typed into the page's forms, kept when one is refused.
#[derive(Default)]
struct Typed {
    cell: String,
    note: String,
    reason: String,
    until: String,
    /// The capacity override form was the one refused: offer it again.
    overriding: bool,
}

/// The cells offered first; the rest are listed with the rule that refuses each.
const OFFERED: usize = 30;

/// The page, for staff of the facility holding the person; it shows where the person is, so
/// every showing is logged as a read of their record.
async fn place_page(
    state: &AppState,
    ui: &Ui,
    number: &str,
    typed: Typed,
    refusal: Option<Refusal>,
) -> UiResult<PlacePage> {
    let scope = person_in_scope(state, &ui.caller, number).await?;
    holding_facility(ui, &scope, number)?;
    log_read(state, &ui.caller, number, "GET /people/{number}/placement").await?;
    let now = chrono::Utc::now();
    let (record, options) = {
        let number = number.to_string();
        state.run(move |s| Ok((s.person_record(&number, now)?, s.placement_options(&number, now)?))).await?
    };
    let whereabouts = record.whereabouts;
    let (allowed, refused): (Vec<_>, Vec<_>) = options.into_iter().partition(|o| o.refusal.is_none());
    let capacity = refusal.as_ref().and_then(|r| r.rule.as_deref()) == Some("housing.capacity_line");
    Ok(PlacePage {
        chrome: ui.chrome(""),
        number: number.to_string(),
        name: record.person.identity.name.full(),
        facility: whereabouts.as_ref().and_then(|w| w.facility.clone()).unwrap_or_default(),
        current: whereabouts.and_then(|w| w.cell),
        may_override: ui.may("POST", "/overrides") && (capacity || typed.overriding),
        typed,
        options: allowed.into_iter().take(OFFERED).collect(),
        refused,
        refusal,
        key: super::random_token(),
    })
}

pub(crate) async fn form(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(number): Path<String>,
) -> UiResult {
    page(place_page(&state, &ui, &number, Typed::default(), None).await?)
}

/// Placements and moves belong to the facility holding the person (listed first), as in the API:
/// staff of a facility a person is being sent to cannot place them before receiving them.
fn holding_facility(ui: &Ui, scope: &service::report::PersonScope, number: &str) -> UiResult<()> {
    Ok(in_scope(&ui.caller, &scope.facilities[..1.min(scope.facilities.len())], "person", number)?)
}

#[derive(Deserialize)]
pub(crate) struct PlaceForm {
    cell: String,
    note: Option<String>,
    key: Option<String>,
}

/// Place someone not yet in a cell, or move them; refusals come back on the form with the rule.
pub(crate) async fn record(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(number): Path<String>,
    Form(form): Form<PlaceForm>,
) -> UiResult {
    let scope = person_in_scope(&state, &ui.caller, &number).await?;
    holding_facility(&ui, &scope, &number)?;
    let now = chrono::Utc::now();
    let placed = {
        let number = number.clone();
        state.run(move |s| Ok(s.whereabouts(&number, now)?.and_then(|w| w.cell).is_some())).await?
    };
    let cell = form.cell.trim().to_string();
    let note = form.note.unwrap_or_default();
    let kind = if placed {
        MovementKind::Move { cell: cell.clone(), bed: None }
    } else {
        MovementKind::Place { cell: cell.clone(), bed: None }
    };
    let request = MovementRequest {
        person: number.clone(),
        kind,
        at: None,
        note: super::form_optional("note", Some(note.clone()))?,
    };
    let ctx = ui.staff().context(now);
    let text = serde_json::to_string(&request).map_err(ApiError::internal)?;
    let key = form.key.unwrap_or_default();
    match super::once(&state, &ui, &key, text, move |tx| service::custody::record_movement_in(tx, &ctx, &request)).await
    {
        Ok(_) => Ok(Redirect::to(&format!("/people/{}", super::urlencode(&number))).into_response()),
        Err(e) if e.status().is_client_error() => {
            let typed = Typed { cell, note, ..Typed::default() };
            page_status(e.status(), place_page(&state, &ui, &number, typed, Some(Refusal::of(&e))).await?)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct OverrideForm {
    facility: String,
    cell: Option<String>,
    reason: String,
    until: String,
    person: Option<String>,
    key: Option<String>,
}

/// A director lifts the capacity line of one cell (or the facility) until a date, with a reason.
pub(crate) async fn capacity_override(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Form(form): Form<OverrideForm>,
) -> UiResult {
    if !ui.staff().sees(&form.facility) {
        return Err(UiError::not_found("facility", &form.facility));
    }
    let zone = super::zone_of(&state, &form.facility).await?;
    let ctx = ui.staff().context(chrono::Utc::now());
    let facility = form.facility.clone();
    let cell = form.cell.clone().filter(|c| !c.trim().is_empty());
    let recorded = match super::form_instant("until", Some(&form.until), zone) {
        Ok(expires_at) => {
            let request = OverrideRequest {
                cell: cell.clone(),
                reason: super::form_text("reason", form.reason.clone())?,
                expires_at,
            };
            let text = format!("{facility} {}", serde_json::to_string(&request).map_err(ApiError::internal)?);
            let key = form.key.clone().unwrap_or_default();
            super::once(&state, &ui, &key, text, move |tx| {
                service::housing::record_override_in(tx, &ctx, &facility, &request)
            })
            .await
        }
        Err(e) => Err(e),
    };
    let person = form.person.clone().filter(|p| !p.is_empty());
    match (recorded, person) {
        (Ok(_), Some(person)) => {
            Ok(Redirect::to(&format!("/people/{}/placement", super::urlencode(&person))).into_response())
        }
        (Ok(_), None) => Ok(Redirect::to("/").into_response()),
        // Back to the placement (for staff who may see that person), the override form filled in
        // as typed and the reason it was refused beside it.
        (Err(e), Some(person)) if e.status().is_client_error() => {
            let mut refusal = Refusal::of(&e);
            for (field, _) in &mut refusal.fields {
                if field == "expires_at" {
                    *field = "until".into();
                }
            }
            let typed = Typed {
                cell: cell.unwrap_or_default(),
                reason: form.reason,
                until: form.until,
                overriding: true,
                ..Typed::default()
            };
            page_status(e.status(), place_page(&state, &ui, &person, typed, Some(refusal)).await?)
        }
        (Err(e), _) => Err(e.into()),
    }
}
