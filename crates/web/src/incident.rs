//! Incidents, injuries, notification obligations and incident statistics under `/api/v1`.
//! Facility staff see their facilities only (404 outside them); injury details go to the
//! medical role only; analysts get the statistics and nothing personal.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use domain::incident::Month;
use domain::FieldError;
use service::incident::{
    IncidentRecord, IncidentRecorded, IncidentReport, IncidentStatistics, IncidentSummary, InjuryDocumented,
    InjuryReport, NotificationPreference, ObligationClosed, ObligationClosure, ObligationState, ObligationView,
    PreferenceRecorded,
};
use service::staff::Role;
use service::ServiceError;

use crate::access::Caller;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::request::{body, decode_cursor, encode_cursor, idempotent, in_scope, limit, parse, query, ApiQuery};
use crate::AppState;

/// The incident routes, merged into the API router.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report_incident, list_incidents))
        .routes(routes!(get_incident))
        .routes(routes!(document_injury))
        .routes(routes!(list_obligations))
        .routes(routes!(close_obligation))
        .routes(routes!(set_notification_preference))
        .routes(routes!(get_incident_statistics))
}

/// Record an incident: kind, time, place, people involved with their roles, staff, description.
/// A death, an escape or a person missing opens notification obligations. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = IncidentReport,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first answer")),
    responses((status = 201, body = IncidentRecorded), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn report_incident(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let report: IncidentReport = parse(&bytes)?;
    in_scope(&caller, std::slice::from_ref(&report.facility), "facility", &report.facility)?;
    let ctx = caller.staff.context(chrono::Utc::now());
    idempotent(&state, &caller, &headers, "POST /api/v1/incidents", &bytes, StatusCode::CREATED, move |tx| {
        service::incident::record_incident_in(tx, &ctx, &report)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct IncidentsQuery {
    /// Only this facility's incidents.
    facility: Option<String>,
    /// Cursor from the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

/// A page of incidents, newest first.
#[derive(Serialize, ToSchema)]
struct IncidentPage {
    items: Vec<IncidentSummary>,
    /// Cursor for the next page; absent on the last page.
    next: Option<String>,
}

/// Incidents of the caller's facilities (or of one), newest recorded first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(IncidentsQuery),
    responses((status = 200, body = IncidentPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list_incidents(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<ApiQuery<IncidentsQuery>, ApiError>,
) -> ApiResult<Json<IncidentPage>> {
    let q = query(q)?;
    let (after, limit) = (decode_cursor(q.after.as_deref())?, limit(q.limit)?);
    let staff = caller.staff.clone();
    let items = state
        .run(move |s| s.incidents(q.facility.as_deref(), |f| staff.sees(f), after.as_deref(), limit as u32))
        .await?;
    let next = (items.len() == limit).then(|| items.last().map(|i| encode_cursor(&i.number))).flatten();
    Ok(Json(IncidentPage { items, next }))
}

/// Roles that follow notification obligations (and so see them on the incident).
pub(crate) fn follows_obligations(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Director | Role::Monitor | Role::Medical)
}

/// An incident with the people involved. Injury details (severity, description) are shown to the
/// medical role only; others see whether an injury was documented. Obligations are shown to the
/// roles that follow them (admin, director, monitor) and to the medical role.
#[utoipa::path(get, path = "/api/v1/incidents/{number}", tag = "incidents", params(("number" = String, Path)),
    responses((status = 200, body = IncidentRecord), (status = 404, body = Problem)))]
async fn get_incident(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
) -> ApiResult<Json<IncidentRecord>> {
    let staff = caller.staff.clone();
    let mut record = state.run(move |s| s.incident(&number, |f| staff.sees(f), chrono::Utc::now())).await?;
    let named = record.people.iter().map(|p| p.person.as_str());
    crate::request::log_reads_of(&state, &caller, named, "GET /api/v1/incidents/{number}").await?;
    if caller.staff.role != Role::Medical {
        record.injuries = None;
    }
    if !follows_obligations(caller.staff.role) {
        record.obligations = None;
    }
    Ok(Json(record))
}

/// Document an injury of a person involved in an incident (medical role). A serious or fatal
/// injury opens notification obligations. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/incidents/{number}/injuries", tag = "incidents",
    params(("number" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "replays return the first answer")),
    request_body = InjuryReport,
    responses((status = 201, body = InjuryDocumented), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn document_injury(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let injury: InjuryReport = parse(&bytes)?;
    let route = format!("POST /api/v1/incidents/{number}/injuries");
    let ctx = caller.staff.context(chrono::Utc::now());
    let staff = caller.staff.clone();
    idempotent(&state, &caller, &headers, &route, &bytes, StatusCode::CREATED, move |tx| {
        // Checked inside the transaction that writes, so the answer never depends on a stale read.
        let facility = service::incident::incident_facility_in(tx, &number)?;
        if !staff.sees(&facility) {
            return Err(ServiceError::NotFound { what: "incident", key: number.clone() });
        }
        service::incident::document_injury_in(tx, &ctx, &number, &injury)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ObligationsQuery {
    /// `open` (default), `overdue` (open and past due) or `all`.
    state: Option<String>,
    /// Only this facility's obligations.
    facility: Option<String>,
}

/// Obligations, by due time.
#[derive(Serialize, ToSchema)]
struct ObligationList {
    items: Vec<ObligationView>,
}

/// Notification obligations (next of kin, Mandela Rule 69; independent authority, Rule 71) of the
/// caller's facilities, by due time: open, overdue or all.
#[utoipa::path(get, path = "/api/v1/obligations", tag = "incidents", params(ObligationsQuery),
    responses((status = 200, body = ObligationList), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_obligations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<ApiQuery<ObligationsQuery>, ApiError>,
) -> ApiResult<Json<ObligationList>> {
    let q = query(q)?;
    let wanted = match q.state.as_deref() {
        None => ObligationState::Open,
        Some(text) => ObligationState::parse(text).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new("state", format!("`{text}` is not one of open, overdue, all"))])
        })?,
    };
    let staff = caller.staff.clone();
    let items =
        state.run(move |s| s.obligations(wanted, q.facility.as_deref(), |f| staff.sees(f), chrono::Utc::now())).await?;
    Ok(Json(ObligationList { items }))
}

/// Close an obligation with the evidence that it was met: who was told, in what capacity, when
/// and how. A closed obligation stays closed. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/obligations/{id}/closure", tag = "incidents",
    params(("id" = String, Path, description = "the obligation's reference, such as INC-CECOT-2026-000012.1"),
           ("Idempotency-Key" = Option<String>, Header, description = "replays return the first answer")),
    request_body = ObligationClosure,
    responses((status = 201, body = ObligationClosed), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)))]
async fn close_obligation(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let closure: ObligationClosure = parse(&bytes)?;
    let route = format!("POST /api/v1/obligations/{id}/closure");
    let ctx = caller.staff.context(chrono::Utc::now());
    let staff = caller.staff.clone();
    idempotent(&state, &caller, &headers, &route, &bytes, StatusCode::CREATED, move |tx| {
        let facility = service::incident::obligation_facility_in(tx, &id)?;
        if !staff.sees(&facility) {
            return Err(ServiceError::NotFound { what: "obligation", key: id.clone() });
        }
        service::incident::close_obligation_in(tx, &ctx, &id, &closure)
    })
    .await
}

/// Record whether a person declines that their family be notified (respected for illness and
/// injury, never for a death). The latest entry applies. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/people/{number}/notification-preference", tag = "people",
    params(("number" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "replays return the first answer")),
    request_body = NotificationPreference,
    responses((status = 201, body = PreferenceRecorded), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_notification_preference(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let preference: NotificationPreference = parse(&bytes)?;
    crate::request::person_in_scope(&state, &caller, &number).await?;
    let route = format!("POST /api/v1/people/{number}/notification-preference");
    let ctx = caller.staff.context(chrono::Utc::now());
    idempotent(&state, &caller, &headers, &route, &bytes, StatusCode::CREATED, move |tx| {
        service::incident::set_notification_preference_in(tx, &ctx, &number, &preference)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatisticsQuery {
    /// First month, `YYYY-MM`; eleven months before `to` when absent.
    from: Option<String>,
    /// Last month, `YYYY-MM`; this month when absent.
    to: Option<String>,
    /// Only this facility.
    facility: Option<String>,
}

fn month(field: &str, text: Option<&str>) -> ApiResult<Option<Month>> {
    text.map(|t| Month::parse(t).map_err(|problem| ApiError::validation(vec![FieldError::new(field, problem)])))
        .transpose()
}

/// Incidents by kind, incidents per 1,000 people per month, deaths in custody and deaths per
/// 10,000 people, per facility and in total, month by month (UTC). Aggregates only. Facility
/// staff get their facilities; the total is over the facilities listed.
#[utoipa::path(get, path = "/api/v1/statistics/incidents", tag = "incidents", params(StatisticsQuery),
    responses((status = 200, body = IncidentStatistics), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn get_incident_statistics(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<ApiQuery<StatisticsQuery>, ApiError>,
) -> ApiResult<Json<IncidentStatistics>> {
    let q = query(q)?;
    let (from, to) = (month("from", q.from.as_deref())?, month("to", q.to.as_deref())?);
    let staff = caller.staff.clone();
    let stats = state
        .run(move |s| s.incident_statistics(from, to, q.facility.as_deref(), |f| staff.sees(f), chrono::Utc::now()))
        .await?;
    Ok(Json(stats))
}
