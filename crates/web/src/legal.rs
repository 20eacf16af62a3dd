//! Legal routes: rule sets, charges and court records, holds and their two-person overrides,
//! a person's legal record, and the alerts.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use domain::legal::{AlertKind, RuleSet};
use domain::sentence::{SentenceInput, SentenceReport};
use service::legal::{
    Alert, ChargeRequest, CourtRecordRequest, HoldRequest, HoldView, LegalRecord, NoticeDone, OverrideAsk, VisitRequest,
};
use store::legal::{FamilyNotice, HoldOverride, HoldRecord};

use service::staff::Role;

use crate::access::Caller;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::request::{instant, open_person, person_in_scope, query, ApiQuery, Parsed};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_rule_set))
        .routes(routes!(load_rule_set))
        .routes(routes!(record_charge))
        .routes(routes!(record_court))
        .routes(routes!(get_legal))
        .routes(routes!(record_sentences))
        .routes(routes!(add_hold))
        .routes(routes!(list_holds))
        .routes(routes!(end_hold))
        .routes(routes!(request_override))
        .routes(routes!(approve_override))
        .routes(routes!(list_alerts))
        .routes(routes!(list_family_notices))
        .routes(routes!(record_family_notice))
        .routes(routes!(record_legal_visit))
}

fn now() -> domain::time::Instant {
    chrono::Utc::now()
}

/// The hold, if the caller may see its person.
async fn hold_in_scope(state: &AppState, caller: &Caller, id: i64) -> ApiResult<HoldView> {
    let hold = state
        .run(move |s| s.holds(None, now()))
        .await?
        .into_iter()
        .find(|h| h.hold.id == id)
        .ok_or_else(|| ApiError::not_found("legal hold", &id.to_string()))?;
    person_in_scope(state, caller, &hold.hold.person)
        .await
        .map_err(|_| ApiError::not_found("legal hold", &id.to_string()))?;
    Ok(hold)
}

/// A jurisdiction's rule set: the latest version loaded, or the one shipped (`generic`, `sv`).
#[utoipa::path(get, path = "/api/v1/rule-sets/{code}", tag = "legal", params(("code" = String, Path)),
    responses((status = 200, body = RuleSet), (status = 404, body = Problem)))]
async fn get_rule_set(State(state): State<AppState>, Path(code): Path<String>) -> ApiResult<Json<RuleSet>> {
    Ok(Json(state.run(move |s| s.rule_set(&code)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RuleSetText {
    /// The rule-set file (TOML), as `custodia ruleset load` reads it.
    text: String,
}

/// Load a new version of a rule set; a broken file is refused naming the line and field.
#[utoipa::path(post, path = "/api/v1/rule-sets", tag = "legal", request_body = RuleSetText,
    responses((status = 201, body = RuleSet), (status = 422, body = Problem)))]
async fn load_rule_set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Parsed(file): Parsed<RuleSetText>,
) -> ApiResult<(StatusCode, Json<RuleSet>)> {
    let ctx = caller.staff.context(now());
    Ok((StatusCode::CREATED, Json(state.run(move |s| s.load_rule_set(&ctx, &file.text)).await?)))
}

/// Record a charge of the person's current custody episode.
#[utoipa::path(post, path = "/api/v1/people/{number}/charges", tag = "legal", params(("number" = String, Path)),
    request_body = ChargeRequest, responses((status = 201, body = Object), (status = 404, body = Problem)))]
async fn record_charge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    Parsed(charge): Parsed<ChargeRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    person_in_scope(&state, &caller, &number).await?;
    let ctx = caller.staff.context(now());
    state.run(move |s| s.record_charge(&ctx, &number, &charge)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "recorded": true }))))
}

/// Record a hearing, the day reasons for detention were given (Rule 119), counsel, a production
/// order or a pretrial extension.
#[utoipa::path(post, path = "/api/v1/people/{number}/court-records", tag = "legal", params(("number" = String, Path)),
    request_body = CourtRecordRequest, responses((status = 201, body = Object), (status = 404, body = Problem)))]
async fn record_court(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    Parsed(record): Parsed<CourtRecordRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    person_in_scope(&state, &caller, &number).await?;
    let ctx = caller.staff.context(now());
    state.run(move |s| s.record_court(&ctx, &number, &record)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "recorded": true }))))
}

/// A person's legal record: status, charges, court records, pretrial deadline with how it was
/// reached, release date, holds. The read is logged.
#[utoipa::path(get, path = "/api/v1/people/{number}/legal", tag = "legal", params(("number" = String, Path)),
    responses((status = 200, body = LegalRecord), (status = 404, body = Problem)))]
async fn get_legal(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
) -> ApiResult<Json<LegalRecord>> {
    open_person(&state, &caller, &number, "GET /api/v1/people/{number}/legal").await?;
    Ok(Json(state.run(move |s| s.legal_record(&number, now())).await?))
}

/// Record the sentences of the person's current custody episode; answers the release date, each
/// sentence's expiry and the trace that explains them. Anyone held past it is an alert.
#[utoipa::path(post, path = "/api/v1/people/{number}/sentences", tag = "legal", params(("number" = String, Path)),
    request_body = SentenceInput,
    responses((status = 201, body = SentenceReport), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn record_sentences(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    Parsed(input): Parsed<SentenceInput>,
) -> ApiResult<(StatusCode, Json<SentenceReport>)> {
    person_in_scope(&state, &caller, &number).await?;
    let ctx = caller.staff.context(now());
    Ok((StatusCode::CREATED, Json(state.run(move |s| s.record_sentences(&ctx, &number, &input)).await?)))
}

/// Record a court's hold: do not transfer, do not remove to a country, do not release, produce
/// at court on a day. Movements it forbids are refused naming it.
#[utoipa::path(post, path = "/api/v1/people/{number}/holds", tag = "legal", params(("number" = String, Path)),
    request_body = HoldRequest, responses((status = 201, body = HoldRecord), (status = 404, body = Problem)))]
async fn add_hold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    Parsed(hold): Parsed<HoldRequest>,
) -> ApiResult<(StatusCode, Json<HoldRecord>)> {
    person_in_scope(&state, &caller, &number).await?;
    let ctx = caller.staff.context(now());
    Ok((StatusCode::CREATED, Json(state.run(move |s| s.add_hold(&ctx, &number, &hold)).await?)))
}

/// Holds with their overrides, of people the caller may see.
#[utoipa::path(get, path = "/api/v1/holds", tag = "legal", responses((status = 200, body = Vec<HoldView>)))]
async fn list_holds(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<HoldView>>> {
    let staff = caller.staff.clone();
    let holds = state
        .run(move |s| {
            let mut shown = Vec::new();
            for hold in s.holds(None, now())? {
                if staff.role.national() || s.person_scope(&hold.hold.person)?.facilities.iter().any(|f| staff.sees(f))
                {
                    shown.push(hold);
                }
            }
            Ok(shown)
        })
        .await?;
    Ok(Json(holds))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Reason {
    /// Why.
    reason: String,
}

/// Lift a hold (when the court lifts its order); it stays in the history.
#[utoipa::path(post, path = "/api/v1/holds/{id}/end", tag = "legal", params(("id" = i64, Path)), request_body = Reason,
    responses((status = 200, body = HoldRecord), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn end_hold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Parsed(reason): Parsed<Reason>,
) -> ApiResult<Json<HoldRecord>> {
    hold_in_scope(&state, &caller, id).await?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.end_hold(&ctx, id, &reason.reason)).await?))
}

/// Ask to allow one movement despite a hold; it takes effect when a second authorised person
/// approves it.
#[utoipa::path(post, path = "/api/v1/holds/{id}/overrides", tag = "legal", params(("id" = i64, Path)),
    request_body = OverrideAsk, responses((status = 201, body = HoldOverride), (status = 404, body = Problem)))]
async fn request_override(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Parsed(ask): Parsed<OverrideAsk>,
) -> ApiResult<(StatusCode, Json<HoldOverride>)> {
    hold_in_scope(&state, &caller, id).await?;
    let ctx = caller.staff.context(now());
    Ok((StatusCode::CREATED, Json(state.run(move |s| s.request_hold_override(&ctx, id, &ask)).await?)))
}

/// Approve an override: refused for the person who asked for it.
#[utoipa::path(post, path = "/api/v1/hold-overrides/{id}/approval", tag = "legal", params(("id" = i64, Path)),
    responses((status = 200, body = HoldOverride), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn approve_override(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<HoldOverride>> {
    let hold = state
        .run(move |s| s.holds(None, now()))
        .await?
        .into_iter()
        .find(|h| h.overrides.iter().any(|o| o.id == id))
        .ok_or_else(|| ApiError::not_found("hold override", &id.to_string()))?;
    hold_in_scope(&state, &caller, hold.hold.id).await?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.approve_hold_override(&ctx, id)).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AlertsQuery {
    /// RFC 3339 instant; now when absent.
    at: Option<String>,
    /// Only this kind.
    kind: Option<AlertKind>,
}

/// Every open alert in the caller's facilities: pretrial deadlines near or passed, release dates
/// passed, transfers not received, notification obligations overdue.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "legal", params(AlertsQuery),
    responses((status = 200, body = Vec<Alert>)))]
async fn list_alerts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Result<ApiQuery<AlertsQuery>, ApiError>,
) -> ApiResult<Json<Vec<Alert>>> {
    let params = query(params)?;
    let at = instant(params.at.as_deref())?;
    let staff = caller.staff.clone();
    let mut alerts = state.run(move |s| s.alerts(at, |f| staff.sees(f))).await?;
    if let Some(kind) = params.kind {
        alerts.retain(|a| a.kind == kind);
    }
    // Overdue notification obligations are for those who see obligations (directors, monitors).
    if !matches!(caller.staff.role, Role::Admin | Role::Director | Role::Monitor) {
        alerts.retain(|a| a.kind != AlertKind::ObligationOverdue);
    }
    Ok(Json(alerts))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct NoticesQuery {
    /// RFC 3339 instant; the last 30 days when absent.
    since: Option<String>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

/// Admissions and transfers in the caller's facilities whose family is not yet told (Mandela
/// Rule 68), newest first; people who declined are left out.
#[utoipa::path(get, path = "/api/v1/family-notices", tag = "legal", params(NoticesQuery),
    responses((status = 200, body = Vec<FamilyNotice>)))]
async fn list_family_notices(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Result<ApiQuery<NoticesQuery>, ApiError>,
) -> ApiResult<Json<Vec<FamilyNotice>>> {
    let params = query(params)?;
    let since = match params.since.as_deref() {
        Some(text) => crate::request::instant_named("since", text)?,
        None => now() - chrono::Duration::days(30),
    };
    let limit = crate::request::limit(params.limit)? as u32;
    let staff = caller.staff.clone();
    Ok(Json(state.run(move |s| s.family_notices(|f| staff.sees(f), since, limit)).await?))
}

/// Record that the family was told of an admission or transfer (the movement's id).
#[utoipa::path(post, path = "/api/v1/family-notices/{movement}", tag = "legal", params(("movement" = i64, Path)),
    request_body = NoticeDone, responses((status = 201, body = Object), (status = 404, body = Problem)))]
async fn record_family_notice(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(movement): Path<i64>,
    Parsed(done): Parsed<NoticeDone>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    // A movement outside the caller's facilities answers as one that does not exist.
    let facility = state.run(move |s| s.movement_facility(movement)).await?;
    if !facility.is_some_and(|f| caller.staff.sees(&f)) {
        return Err(ApiError::not_found("admission or transfer", &movement.to_string()));
    }
    let ctx = caller.staff.context(now());
    state.run(move |s| s.record_family_notice(&ctx, movement, &done)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "recorded": true }))))
}

/// Record a visit by legal counsel. Legal visits are never monitored; the register says that
/// one took place, not what was said.
#[utoipa::path(post, path = "/api/v1/people/{number}/legal-visits", tag = "legal", params(("number" = String, Path)),
    request_body = VisitRequest, responses((status = 201, body = Object), (status = 404, body = Problem)))]
async fn record_legal_visit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    Parsed(visit): Parsed<VisitRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    person_in_scope(&state, &caller, &number).await?;
    let ctx = caller.staff.context(now());
    state.run(move |s| s.record_legal_visit(&ctx, &number, &visit)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "recorded": true, "monitored": false }))))
}
