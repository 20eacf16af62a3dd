//! Incidents (report, follow up) and the notification obligations they open.

use askama::Template;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use domain::incident::{IncidentKind, InvolvementRole, NotificationMethod};
use service::incident::{
    IncidentRecord, IncidentReport, IncidentSummary, InvolvedPerson, ObligationClosure, ObligationState, ObligationView,
};
use service::staff::Role;

use super::{csv, form_instant, page, page_status, Chrome, Format, Refusal, Ui, UiError, UiResult};
use crate::problem::ApiError;
use crate::AppState;

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    chrome: Chrome,
    incidents: Vec<IncidentSummary>,
    facilities: Vec<String>,
    kinds: Vec<&'static str>,
    may_report: bool,
    refusal: Option<Refusal>,
    /// What was typed, kept when the report is refused.
    form: ReportForm,
}

/// Most incidents one page lists.
const INCIDENTS_SHOWN: u32 = 200;

async fn incidents_page(
    state: &AppState,
    ui: &Ui,
    refusal: Option<Refusal>,
    form: ReportForm,
) -> UiResult<IncidentsPage> {
    let staff = ui.staff().clone();
    let (incidents, facilities) =
        state.run(move |s| Ok((s.incidents(None, |f| staff.sees(f), None, INCIDENTS_SHOWN)?, s.facilities()?))).await?;
    Ok(IncidentsPage {
        chrome: ui.chrome("/incidents"),
        incidents,
        facilities: facilities.into_iter().map(|f| f.code).filter(|c| ui.staff().sees(c)).collect(),
        kinds: IncidentKind::ALL.iter().map(|k| k.as_str()).collect(),
        may_report: ui.may("POST", "/incidents"),
        refusal,
        form,
    })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(f): Query<Format>,
) -> UiResult {
    let page_data = incidents_page(&state, &ui, None, ReportForm::default()).await?;
    if f.csv() {
        let rows = page_data.incidents.iter().map(|i| {
            vec![
                i.number.clone(),
                i.facility.clone(),
                i.kind.as_str().to_string(),
                i.occurred_at.to_rfc3339(),
                i.cell.clone().or(i.location.clone()).unwrap_or_default(),
                i.people.to_string(),
                i.description.clone(),
            ]
        });
        let header = ["number", "facility", "kind", "occurred_at", "where", "people", "description"];
        return Ok(csv("incidents", &header, rows));
    }
    page(page_data)
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct ReportForm {
    facility: String,
    kind: String,
    at: Option<String>,
    cell: Option<String>,
    location: Option<String>,
    /// Person numbers, separated by spaces or commas.
    people: Option<String>,
    role: Option<String>,
    injured: Option<String>,
    description: String,
}

pub(crate) async fn report(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Form(form): Form<ReportForm>,
) -> UiResult {
    if !ui.staff().sees(&form.facility) {
        return Err(UiError::not_found("facility", &form.facility));
    }
    let typed = form.clone();
    let recorded = match report_of(&state, form).await {
        Ok(report) => {
            let ctx = ui.staff().context(chrono::Utc::now());
            state.run(move |s| s.record_incident(&ctx, &report)).await
        }
        Err(e) => Err(e),
    };
    match recorded {
        Ok(recorded) => Ok(Redirect::to(&format!("/incidents/{}", recorded.number)).into_response()),
        Err(e) if e.status().is_client_error() => {
            page_status(e.status(), incidents_page(&state, &ui, Some(Refusal::of(&e)), typed).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The report the form describes; times are the facility's local time.
async fn report_of(state: &AppState, form: ReportForm) -> Result<IncidentReport, ApiError> {
    let invalid = |field: &str, problem: String| ApiError::validation(vec![domain::FieldError::new(field, problem)]);
    let kind = IncidentKind::parse(&form.kind)
        .ok_or_else(|| invalid("kind", format!("`{}` is not a kind of incident", form.kind)))?;
    let role = InvolvementRole::parse(form.role.as_deref().unwrap_or("involved")).unwrap_or(InvolvementRole::Involved);
    let people = form
        .people
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|p| !p.is_empty())
        .map(|p| InvolvedPerson { person: p.to_string(), role, injured: form.injured.is_some() })
        .collect();
    let zone = super::zone_of(state, &form.facility).await?;
    let at = form.at.as_deref().filter(|a| !a.is_empty()).map(|a| form_instant("at", Some(a), zone)).transpose()?;
    Ok(IncidentReport {
        facility: form.facility,
        kind,
        at,
        cell: form.cell.filter(|c| !c.trim().is_empty()),
        location: super::form_optional("location", form.location)?,
        people,
        staff: Vec::new(),
        description: super::form_text("description", form.description)?,
    })
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    chrome: Chrome,
    incident: IncidentRecord,
    /// The obligations page is open to the role.
    may_follow: bool,
}

/// One incident; injuries only for the medical role, obligations for those who follow them.
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(number): Path<String>,
) -> UiResult {
    let staff = ui.staff().clone();
    let mut incident = state.run(move |s| s.incident(&number, |f| staff.sees(f), chrono::Utc::now())).await?;
    let named = incident.people.iter().map(|p| p.person.as_str());
    crate::request::log_reads_of(&state, &ui.caller, named, "GET /incidents/{number}").await?;
    if ui.role() != Role::Medical {
        incident.injuries = None;
    }
    if !crate::incident::follows_obligations(ui.role()) {
        incident.obligations = None;
    }
    page(IncidentPage { chrome: ui.chrome("/incidents"), incident, may_follow: ui.may("GET", "/obligations") })
}

#[derive(Template)]
#[template(path = "obligations.html")]
struct ObligationsPage {
    chrome: Chrome,
    obligations: Vec<ObligationView>,
    state: String,
    may_close: bool,
    methods: Vec<&'static str>,
    refusal: Option<Refusal>,
}

#[derive(Deserialize)]
pub(crate) struct ObligationsQuery {
    state: Option<String>,
    format: Option<String>,
}

pub(crate) async fn obligations(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<ObligationsQuery>,
) -> UiResult {
    let csv_wanted = q.format.as_deref() == Some("csv");
    let page_data = obligations_page(&state, &ui, q.state.unwrap_or_else(|| "open".into()), None).await?;
    if csv_wanted {
        let rows = page_data.obligations.iter().map(|o| {
            vec![
                o.id.clone(),
                o.incident.clone(),
                o.facility.clone(),
                o.rule.to_string(),
                o.person.clone().unwrap_or_default(),
                o.due_at.to_rfc3339(),
                o.overdue.to_string(),
                o.closure.is_some().to_string(),
            ]
        });
        let header = ["id", "incident", "facility", "rule", "person", "due_at", "overdue", "closed"];
        return Ok(csv("obligations", &header, rows));
    }
    page(page_data)
}

async fn obligations_page(
    state: &AppState,
    ui: &Ui,
    wanted: String,
    refusal: Option<Refusal>,
) -> UiResult<ObligationsPage> {
    let which = ObligationState::parse(&wanted)
        .ok_or_else(|| ApiError::validation(vec![domain::FieldError::new("state", "is open, overdue or all")]))?;
    let staff = ui.staff().clone();
    let obligations = state.run(move |s| s.obligations(which, None, |f| staff.sees(f), chrono::Utc::now())).await?;
    Ok(ObligationsPage {
        chrome: ui.chrome("/obligations"),
        obligations,
        state: wanted,
        may_close: ui.may("POST", "/obligations/{id}/closure"),
        methods: NotificationMethod::ALL.iter().map(|m| m.as_str()).collect(),
        refusal,
    })
}

#[derive(Deserialize)]
pub(crate) struct CloseForm {
    notified: String,
    capacity: String,
    method: String,
    note: Option<String>,
}

pub(crate) async fn close_obligation(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(form): Form<CloseForm>,
) -> UiResult {
    let method = NotificationMethod::parse(&form.method)
        .ok_or_else(|| ApiError::validation(vec![domain::FieldError::new("method", "is not a way of notifying")]))?;
    let now = chrono::Utc::now();
    let closure = ObligationClosure {
        notified: super::form_text("notified", form.notified)?,
        capacity: super::form_text("capacity", form.capacity)?,
        at: now,
        method,
        note: super::form_optional("note", form.note)?,
    };
    let ctx = ui.staff().context(now);
    let staff = ui.staff().clone();
    // As in the API: the obligation's facility is checked in the transaction that writes, and one
    // outside the caller's facilities is not found.
    let closed = state.run(move |s| {
        s.batch(|tx| {
            let facility = service::incident::obligation_facility_in(tx, &id)?;
            if !staff.sees(&facility) {
                return Err(service::ServiceError::NotFound { what: "obligation", key: id.clone() });
            }
            service::incident::close_obligation_in(tx, &ctx, &id, &closure)
        })
    });
    match closed.await {
        Ok(_) => Ok(Redirect::to("/obligations").into_response()),
        Err(e) if e.status().is_client_error() => {
            page_status(e.status(), obligations_page(&state, &ui, "open".into(), Some(Refusal::of(&e))).await?)
        }
        Err(e) => Err(e.into()),
    }
}
