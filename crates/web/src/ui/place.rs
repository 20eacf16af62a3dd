//! Place or move a person: choose a cell; a refusal names the rule; a director may lift the
//! capacity line with a recorded override.

use askama::Template;
use axum::extract::{Extension, Form, Path, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use service::custody::{MovementKind, MovementRequest};
use service::housing::{OverrideRequest, PlacementOption};

use super::{page, page_status, Chrome, Refusal, Ui, UiError, UiResult};
use crate::routes::{in_scope, open_person, person_in_scope};
use crate::AppState;

#[derive(Template)]
#[template(path = "place.html")]
struct PlacePage {
    chrome: Chrome,
    number: String,
    name: String,
    facility: String,
    current: Option<String>,
    cell: String,
    options: Vec<PlacementOption>,
    refused: Vec<PlacementOption>,
    refusal: Option<Refusal>,
    may_override: bool,
}

/// The cells offered first; the rest are listed with the rule that refuses each.
const OFFERED: usize = 30;

async fn place_page(
    state: &AppState,
    ui: &Ui,
    number: &str,
    cell: String,
    refusal: Option<Refusal>,
) -> UiResult<PlacePage> {
    person_in_scope(state, &ui.caller, number).await?;
    let now = chrono::Utc::now();
    let (record, options) = {
        let number = number.to_string();
        state.run(move |s| Ok((s.person_record(&number, now)?, s.placement_options(&number, now)?))).await?
    };
    let whereabouts = record.whereabouts;
    let (allowed, refused): (Vec<_>, Vec<_>) = options.into_iter().partition(|o| o.refusal.is_none());
    let may_override = ui.may("POST", "/overrides")
        && refusal.as_ref().and_then(|r| r.rule.as_deref()) == Some("housing.capacity_line");
    Ok(PlacePage {
        chrome: ui.chrome(""),
        number: number.to_string(),
        name: record.person.identity.name.full(),
        facility: whereabouts.as_ref().and_then(|w| w.facility.clone()).unwrap_or_default(),
        current: whereabouts.and_then(|w| w.cell),
        cell,
        options: allowed.into_iter().take(OFFERED).collect(),
        refused,
        refusal,
        may_override,
    })
}

pub(crate) async fn form(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(number): Path<String>,
) -> UiResult {
    // The page shows where the person is: a read of their record.
    let scope = open_person(&state, &ui.caller, &number, "GET /people/{number}/placement").await?;
    holding_facility(&ui, &scope, &number)?;
    page(place_page(&state, &ui, &number, String::new(), None).await?)
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
    let kind = if placed {
        MovementKind::Move { cell: cell.clone(), bed: None }
    } else {
        MovementKind::Place { cell: cell.clone(), bed: None }
    };
    let request =
        MovementRequest { person: number.clone(), kind, at: None, note: form.note.filter(|n| !n.trim().is_empty()) };
    let ctx = ui.staff().context(now);
    match state.run(move |s| s.record_movement(&ctx, &request)).await {
        Ok(_) => Ok(Redirect::to(&format!("/people/{}", super::urlencode(&number))).into_response()),
        Err(e) if e.status().is_client_error() => {
            let status = e.status();
            let refusal = Refusal::of(&e);
            page_status(status, place_page(&state, &ui, &number, cell, Some(refusal)).await?)
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
            let request = OverrideRequest { cell: cell.clone(), reason: form.reason, expires_at };
            state.run(move |s| s.record_override(&ctx, &facility, &request)).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        // Back to the placement, with the reason the override was refused.
        return match form.person.as_deref().filter(|p| !p.is_empty()) {
            Some(person) if e.status().is_client_error() => page_status(
                e.status(),
                place_page(&state, &ui, person, cell.unwrap_or_default(), Some(Refusal::of(&e))).await?,
            ),
            _ => Err(e.into()),
        };
    }
    let back = match form.person {
        Some(person) if !person.is_empty() => format!("/people/{}/placement", super::urlencode(&person)),
        _ => "/".to_string(),
    };
    Ok(Redirect::to(&back).into_response())
}
