//! The routes: each handler parses, checks scope, calls the service, and answers JSON.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use domain::time::Instant;
use service::custody::{AdmitRequest, Admitted, MovementKind, MovementRecorded, MovementRequest};
use service::estate::CellStatusChange;
use service::layout::FacilityLayout;
use service::report::{Detail, FacilityOccupancy, OccupancyReport, SearchHit};
use service::staff::{ReadRecord, Role, Staff};
use store::{AuditEvent, Facility, MedicalTask, MovementRecord, Occupant, Person, Whereabouts};

use crate::access::{may_record, Caller, SESSION_COOKIE};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::request::{
    body, decode_cursor, encode_cursor, from_value, idempotent, if_match, in_scope, instant, limit, log_read,
    log_reads_of, no_repeated_keys, open_person, parse, person_in_scope, query, scoped, seq_cursor, ApiQuery, Parsed,
};
use crate::{api_doc, AppState};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(api_doc())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(login, logout, current_session))
        .routes(routes!(change_password))
        .routes(routes!(list_facilities, add_facility))
        .routes(routes!(get_facility))
        .routes(routes!(set_cell_status))
        .routes(routes!(list_occupants))
        .routes(routes!(get_occupancy))
        .routes(routes!(get_population))
        .routes(routes!(list_people))
        .routes(routes!(get_person))
        .routes(routes!(get_timeline))
        .routes(routes!(get_whereabouts))
        .routes(routes!(record_movement))
        .routes(routes!(admit))
        .routes(routes!(list_audit_events))
        .routes(routes!(verify_audit))
        .routes(routes!(list_reads))
        .merge(crate::incident::routes())
        .merge(crate::housing::routes())
        .merge(crate::identity::routes())
        .merge(crate::legal::routes())
        .merge(crate::sentence::routes())
}

// ---------------------------------------------------------------------------------------------
// Input helpers
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
struct Health {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Problem)))]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.run(|s| s.facilities()).await {
        Ok(_) => Json(Health { status: "ready" }).into_response(),
        Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "the database does not answer")
            .retry_after(1)
            .into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    name: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct SessionView {
    #[serde(flatten)]
    staff: Staff,
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Instant>,
}

/// Log in with name and password; sets an HttpOnly, SameSite=Strict session cookie.
/// Repeated failures slow down and then lock the name; the answer never says whether it exists.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = Login,
    responses((status = 200, body = SessionView), (status = 401, body = Problem), (status = 429, body = Problem),
              (status = 422, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    Parsed(login): Parsed<Login>,
) -> ApiResult<Response> {
    let now = chrono::Utc::now();
    let client = crate::client_of(&extensions);
    let _permit = state.logins.acquire().await.map_err(ApiError::internal)?;
    let session = state.run(move |s| s.login_from(&login.name, &login.password, client.as_deref(), now)).await?;
    let max_age = (session.expires_at - now).num_seconds().max(0);
    let cookie =
        format!("{SESSION_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}", session.secret);
    let view = SessionView { staff: session.staff, expires_at: Some(session.expires_at) };
    let mut response = Json(view).into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(ApiError::internal)?);
    Ok(response)
}

/// End the browser session.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "logged out"), (status = 401, body = Problem)))]
async fn logout(State(state): State<AppState>, Extension(caller): Extension<Caller>) -> ApiResult<Response> {
    if let Some(secret) = caller.session {
        state.run(move |s| s.logout(&secret)).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// Who is logged in.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionView), (status = 401, body = Problem)))]
async fn current_session(Extension(caller): Extension<Caller>) -> Json<SessionView> {
    Json(SessionView { staff: caller.staff, expires_at: None })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// Change one's own password; other sessions end.
#[utoipa::path(post, path = "/api/v1/session/password", tag = "session", request_body = PasswordChange,
    responses((status = 204, description = "changed"), (status = 401, body = Problem), (status = 422, body = Problem),
              (status = 429, body = Problem, description = "too many wrong old passwords: wait as `Retry-After` says")))]
async fn change_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Parsed(change): Parsed<PasswordChange>,
) -> ApiResult<StatusCode> {
    let ctx = caller.staff.context(chrono::Utc::now());
    state.run(move |s| s.change_password(&ctx, &ctx.actor, &change.old_password, &change.new_password)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Estate and occupancy
// ---------------------------------------------------------------------------------------------

/// Facilities the caller can see.
#[utoipa::path(get, path = "/api/v1/facilities", tag = "estate",
    responses((status = 200, body = Vec<Facility>), (status = 401, body = Problem)))]
async fn list_facilities(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<Facility>>> {
    let all = state.run(|s| s.facilities()).await?;
    Ok(Json(all.into_iter().filter(|f| caller.staff.sees(&f.code)).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewFacility {
    /// The layout file's text (TOML), as `custodia facility add --layout` reads it.
    layout: String,
}

/// Create a facility from a layout (TOML text). Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/facilities", tag = "estate", request_body = NewFacility,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first answer")),
    responses((status = 201, body = Object), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn add_facility(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let request: NewFacility = parse(&bytes)?;
    let layout = FacilityLayout::parse(&request.layout)?;
    let ctx = caller.staff.context(chrono::Utc::now());
    idempotent(&state, &caller, &headers, "POST /api/v1/facilities", &bytes, StatusCode::CREATED, move |tx| {
        service::estate::add_facility_in(tx, &ctx, &layout)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AtQuery {
    /// RFC 3339 instant; now when absent.
    at: Option<String>,
    /// `facility` (default), `unit` or `cell`.
    detail: Option<String>,
}

fn detail(text: Option<&str>) -> ApiResult<Detail> {
    match text.unwrap_or("facility") {
        "facility" => Ok(Detail::Facility),
        "unit" => Ok(Detail::Unit),
        "cell" => Ok(Detail::Cell),
        other => Err(ApiError::validation(vec![domain::FieldError::new(
            "detail",
            format!("`{other}` is not one of facility, unit, cell"),
        )])),
    }
}

/// One facility's population and capacity by every measure, at any instant, optionally per unit and cell.
#[utoipa::path(get, path = "/api/v1/facilities/{code}", tag = "estate", params(("code" = String, Path), AtQuery),
    responses((status = 200, body = FacilityOccupancy), (status = 404, body = Problem)))]
async fn get_facility(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
    q: Result<ApiQuery<AtQuery>, ApiError>,
) -> ApiResult<Json<FacilityOccupancy>> {
    let q = query(q)?;
    let (at, detail) = (instant(q.at.as_deref())?, detail(q.detail.as_deref())?);
    in_scope(&caller, std::slice::from_ref(&code), "facility", &code)?;
    let report = state.run(move |s| s.occupancy(at, detail)).await?;
    report
        .facilities
        .into_iter()
        .find(|f| f.code == code)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("facility", &code))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CellStatus {
    /// Back in use (true) or out of order (false).
    in_use: bool,
    /// Why it is out of order; required then.
    reason: Option<String>,
}

/// Put a cell out of order (with a reason) or back in use.
#[utoipa::path(post, path = "/api/v1/facilities/{code}/cells/{cell}/status", tag = "estate",
    params(("code" = String, Path), ("cell" = String, Path)), request_body = CellStatus,
    responses((status = 200, body = Object), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn set_cell_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((code, cell)): Path<(String, String)>,
    Parsed(status): Parsed<CellStatus>,
) -> ApiResult<Json<serde_json::Value>> {
    in_scope(&caller, std::slice::from_ref(&code), "facility", &code)?;
    let ctx = caller.staff.context(chrono::Utc::now());
    let change = CellStatusChange { facility: code, cell, in_use: status.in_use, reason: status.reason };
    let seq = state.run(move |s| s.set_cell_status(&ctx, &change)).await?;
    Ok(Json(serde_json::json!({ "audit_seq": seq })))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct OccupantsQuery {
    /// RFC 3339 instant; now when absent.
    at: Option<String>,
    /// Only this unit.
    unit: Option<String>,
    /// Only this cell.
    cell: Option<String>,
    /// Cursor from the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

/// A page of people.
#[derive(Serialize, ToSchema)]
struct OccupantPage {
    items: Vec<Occupant>,
    /// Cursor for the next page; absent on the last page.
    next: Option<String>,
}

fn occupant_page(all: Vec<Occupant>, after: Option<String>, limit: usize) -> OccupantPage {
    let start = match after {
        Some(key) => all.partition_point(|o| o.number <= key),
        None => 0,
    };
    let items: Vec<Occupant> = all.into_iter().skip(start).take(limit + 1).collect();
    let more = items.len() > limit;
    let items: Vec<Occupant> = items.into_iter().take(limit).collect();
    let next = more.then(|| items.last().map(|o| encode_cursor(&o.number))).flatten();
    OccupantPage { items, next }
}

/// Who was in a facility (or one of its units or cells) at an instant, by person number.
#[utoipa::path(get, path = "/api/v1/facilities/{code}/occupants", tag = "estate",
    params(("code" = String, Path), OccupantsQuery),
    responses((status = 200, body = OccupantPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list_occupants(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
    q: Result<ApiQuery<OccupantsQuery>, ApiError>,
) -> ApiResult<Json<OccupantPage>> {
    let q = query(q)?;
    let (at, after, limit) = (instant(q.at.as_deref())?, decode_cursor(q.after.as_deref())?, limit(q.limit)?);
    in_scope(&caller, std::slice::from_ref(&code), "facility", &code)?;
    let all = state.run(move |s| s.occupants(&code, q.unit.as_deref(), q.cell.as_deref(), at)).await?;
    let page = occupant_page(all, after, limit);
    let route = "GET /api/v1/facilities/{code}/occupants";
    log_reads_of(&state, &caller, page.items.iter().map(|o| o.number.as_str()), route).await?;
    Ok(Json(page))
}

/// Occupancy against declared, operational, beds, ICRC and CPT capacity for the facilities the caller sees.
#[utoipa::path(get, path = "/api/v1/occupancy", tag = "estate", params(AtQuery),
    responses((status = 200, body = OccupancyReport), (status = 400, body = Problem)))]
async fn get_occupancy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<ApiQuery<AtQuery>, ApiError>,
) -> ApiResult<Json<OccupancyReport>> {
    let q = query(q)?;
    let (at, detail) = (instant(q.at.as_deref())?, detail(q.detail.as_deref())?);
    let report = state.run(move |s| s.occupancy(at, detail)).await?;
    Ok(Json(scoped(report, &caller.staff)))
}

#[derive(Serialize, ToSchema)]
struct FacilityPopulation {
    code: String,
    population: u64,
}

#[derive(Serialize, ToSchema)]
struct PopulationView {
    #[schema(value_type = String, format = DateTime)]
    at: Instant,
    facilities: Vec<FacilityPopulation>,
    total: u64,
    in_transit: u64,
}

/// Population per facility at an instant.
#[utoipa::path(get, path = "/api/v1/population", tag = "estate", params(AtQuery),
    responses((status = 200, body = PopulationView), (status = 400, body = Problem)))]
async fn get_population(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<ApiQuery<AtQuery>, ApiError>,
) -> ApiResult<Json<PopulationView>> {
    let q = query(q)?;
    let at = instant(q.at.as_deref())?;
    let report = scoped(state.run(move |s| s.occupancy(at, Detail::Facility)).await?, &caller.staff);
    Ok(Json(PopulationView {
        at: report.at,
        total: report.total.population,
        in_transit: report.in_transit,
        facilities: report
            .facilities
            .into_iter()
            .map(|f| FacilityPopulation { code: f.code, population: f.measure.population })
            .collect(),
    }))
}

// ---------------------------------------------------------------------------------------------
// People
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PeopleQuery {
    /// Facility code: the people held there at `at`.
    facility: Option<String>,
    /// Words of a name: accents, case and word order ignored; the last word may be unfinished.
    q: Option<String>,
    /// RFC 3339 instant (with `facility`); now when absent.
    at: Option<String>,
    /// Cursor from the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

/// A page of people found by name.
#[derive(Serialize, ToSchema)]
struct SearchPage {
    items: Vec<SearchHit>,
    /// Cursor for the next page; absent on the last page.
    next: Option<String>,
}

/// People held in a facility, or found by name.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum PeoplePage {
    /// With `facility`.
    Held(OccupantPage),
    /// With `q`.
    Found(SearchPage),
}

/// People held in a facility (`facility`), or found by name (`q`), by person number.
/// Staff see only people of their facilities.
#[utoipa::path(get, path = "/api/v1/people", tag = "people", params(PeopleQuery),
    responses((status = 200, body = PeoplePage), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn list_people(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<ApiQuery<PeopleQuery>, ApiError>,
) -> ApiResult<Json<PeoplePage>> {
    let q = query(q)?;
    let (at, after, limit) = (instant(q.at.as_deref())?, decode_cursor(q.after.as_deref())?, limit(q.limit)?);
    match (q.facility, q.q) {
        (Some(facility), None) => {
            in_scope(&caller, std::slice::from_ref(&facility), "facility", &facility)?;
            let all = state.run(move |s| s.occupants(&facility, None, None, at)).await?;
            let page = occupant_page(all, after, limit);
            log_reads_of(&state, &caller, page.items.iter().map(|o| o.number.as_str()), "GET /api/v1/people").await?;
            Ok(Json(PeoplePage::Held(page)))
        }
        (None, Some(words)) => {
            let after = after.unwrap_or_default();
            let staff = caller.staff.clone();
            let items = state.run(move |s| s.search_people(&words, &after, limit as u32, |f| staff.sees(f))).await?;
            let next = (items.len() == limit).then(|| items.last().map(|h| encode_cursor(&h.number))).flatten();
            log_reads_of(&state, &caller, items.iter().map(|h| h.number.as_str()), "GET /api/v1/people").await?;
            Ok(Json(PeoplePage::Found(SearchPage { items, next })))
        }
        _ => Err(ApiError::validation(vec![domain::FieldError::new(
            "facility",
            "give either `facility` (people held there) or `q` (words of a name), not both",
        )])),
    }
}

/// A person's record as the API shows it.
#[derive(Serialize, ToSchema)]
struct PersonView {
    #[serde(flatten)]
    person: Person,
    /// Facilities answerable for the person now.
    facilities: Vec<String>,
    whereabouts: Option<Whereabouts>,
    timeline: Vec<MovementRecord>,
    /// Medical-examination tasks: present only for the medical role.
    #[serde(skip_serializing_if = "Option::is_none")]
    medical_tasks: Option<Vec<MedicalTask>>,
}

fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

/// A person's record: identity, where they are, their movements. Every read is logged.
/// The `ETag` changes with every movement; send it as `If-Match` when recording one.
#[utoipa::path(get, path = "/api/v1/people/{number}", tag = "people", params(("number" = String, Path)),
    responses((status = 200, body = PersonView, headers(("ETag" = String))), (status = 404, body = Problem)))]
async fn get_person(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
) -> ApiResult<Response> {
    // Scope and record in one trip to the database; the read is logged before anything is answered.
    let staff = caller.staff.clone();
    let (scope, record) = {
        let number = number.clone();
        state.run(move |s| s.person_record_if(&number, chrono::Utc::now(), |f| staff.sees(f))).await?
    };
    log_read(&state, &caller, &number, "GET /api/v1/people/{number}").await?;
    let medical = caller.staff.role == Role::Medical;
    let view = PersonView {
        person: record.person,
        facilities: scope.facilities.clone(),
        whereabouts: record.whereabouts,
        timeline: record.timeline,
        medical_tasks: medical.then_some(record.medical_tasks),
    };
    Ok(([(header::ETAG, etag(scope.version))], Json(view)).into_response())
}

/// A person's movements in the order they happened. The read is logged.
#[utoipa::path(get, path = "/api/v1/people/{number}/timeline", tag = "people", params(("number" = String, Path)),
    responses((status = 200, body = Vec<MovementRecord>), (status = 404, body = Problem)))]
async fn get_timeline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
) -> ApiResult<Json<Vec<MovementRecord>>> {
    open_person(&state, &caller, &number, "GET /api/v1/people/{number}/timeline").await?;
    let record = state.run(move |s| s.person_record(&number, chrono::Utc::now())).await?;
    Ok(Json(record.timeline))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct WhenQuery {
    /// RFC 3339 instant; now when absent.
    at: Option<String>,
}

/// Where the person was at an instant; `null` when not in custody then. The read is logged.
#[utoipa::path(get, path = "/api/v1/people/{number}/whereabouts", tag = "people",
    params(("number" = String, Path), WhenQuery),
    responses((status = 200, body = Option<Whereabouts>), (status = 404, body = Problem)))]
async fn get_whereabouts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    q: Result<ApiQuery<WhenQuery>, ApiError>,
) -> ApiResult<Json<Option<Whereabouts>>> {
    let at = instant(query(q)?.at.as_deref())?;
    open_person(&state, &caller, &number, "GET /api/v1/people/{number}/whereabouts").await?;
    Ok(Json(state.run(move |s| s.whereabouts(&number, at)).await?))
}

/// A movement to record for the person in the path.
#[derive(Deserialize, ToSchema)]
struct MovementBody {
    #[serde(flatten)]
    kind: MovementKind,
    /// When it happened (RFC 3339); now when absent.
    #[schema(value_type = Option<String>, format = DateTime)]
    at: Option<Instant>,
    /// Free-text note.
    note: Option<domain::text::LongText>,
}

impl MovementBody {
    /// Read apart from `at` and `note`, so that unknown fields of the movement are refused by
    /// name (serde cannot deny unknown fields through `flatten`).
    fn parse(bytes: &[u8]) -> ApiResult<Self> {
        #[derive(Deserialize)]
        struct When {
            at: Option<Instant>,
            note: Option<domain::text::LongText>,
        }
        let mut value: serde_json::Value = parse(bytes)?;
        let fields = value
            .as_object_mut()
            .ok_or_else(|| ApiError::validation(vec![domain::FieldError::new("body", "must be a JSON object")]))?;
        let when: serde_json::Map<String, serde_json::Value> =
            ["at", "note"].iter().filter_map(|k| fields.remove_entry(*k)).collect();
        let when: When = from_value(serde_json::Value::Object(when))?;
        let kind: MovementKind = from_value(value.clone())?;
        // serde lets unknown fields through on variants without fields (`return`): compare with
        // what the movement itself holds.
        let known = serde_json::to_value(&kind).map_err(ApiError::internal)?;
        let unknown: Vec<domain::FieldError> = value
            .as_object()
            .into_iter()
            .flat_map(|fields| fields.keys())
            .filter(|key| known.get(key.as_str()).is_none())
            .map(|key| domain::FieldError::new(key.as_str(), "is not a field of this movement"))
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::validation(unknown));
        }
        Ok(Self { kind, at: when.at, note: when.note })
    }
}

/// Record a movement: place, move, out (court, hospital…), return, transfer, receive, release.
/// Honours `Idempotency-Key`, and `If-Match` with the person's `ETag` (412 when stale).
#[utoipa::path(post, path = "/api/v1/people/{number}/movements", tag = "people",
    params(("number" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "replays return the first answer"),
           ("If-Match" = Option<String>, Header, description = "the person's ETag when the clerk read the record")),
    request_body = MovementBody,
    responses((status = 201, body = MovementRecorded), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn record_movement(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let movement = MovementBody::parse(&bytes)?;
    if !may_record(caller.staff.role, &movement.kind) {
        return Err(ApiError::forbidden(format!(
            "the {} role may not record this movement",
            caller.staff.role.as_str()
        )));
    }
    let scope = person_in_scope(&state, &caller, &number).await?;
    match &movement.kind {
        // The destination receives; every other movement belongs to the facility holding the
        // person (the sender while in transit), which is listed first.
        MovementKind::Receive { facility } => in_scope(&caller, std::slice::from_ref(facility), "facility", facility)?,
        _ => in_scope(&caller, &scope.facilities[..1], "person", &number)?,
    }
    let expected = if_match(&headers)?;
    let route = format!("POST /api/v1/people/{number}/movements");
    let ctx = caller.staff.context(chrono::Utc::now());
    let request = MovementRequest { person: number, kind: movement.kind, at: movement.at, note: movement.note };
    idempotent(&state, &caller, &headers, &route, &bytes, StatusCode::CREATED, move |tx| {
        // Checked inside the write transaction, so two clerks holding the same version cannot both pass.
        if let Some(version) = expected {
            service::custody::expect_version(tx, &request.person, version)?;
        }
        service::custody::record_movement_in(tx, &ctx, &request)
    })
    .await
}

/// Admit a person with the Mandela Rule 7 record. No legal basis, no admission. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/admissions", tag = "people", request_body = AdmitRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first answer")),
    responses((status = 201, body = Admitted), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn admit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("malformed-json", "the body is not UTF-8"))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| ApiError::bad_request("malformed-json", format!("the body is not valid JSON: {e}")))?;
    no_repeated_keys(&bytes)?;
    let request = AdmitRequest::from_json(text)?;
    in_scope(&caller, std::slice::from_ref(&request.facility), "facility", &request.facility)?;
    if let Some(number) = &request.person {
        // Re-admitting someone on record: only staff who can see that person may, so that the
        // answer (and its identity checks) never tells others the person exists.
        person_in_scope(&state, &caller, number).await?;
    }
    let ctx = caller.staff.context(chrono::Utc::now());
    idempotent(&state, &caller, &headers, "POST /api/v1/admissions", &bytes, StatusCode::CREATED, move |tx| {
        service::custody::admit_in(tx, &ctx, &request)
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Oversight
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Cursor from the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct EventPage {
    items: Vec<AuditEvent>,
    next: Option<String>,
}

/// Audit events in chain order.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "oversight", params(PageQuery),
    responses((status = 200, body = EventPage), (status = 400, body = Problem)))]
async fn list_audit_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<ApiQuery<PageQuery>, ApiError>,
) -> ApiResult<Json<EventPage>> {
    let q = query(q)?;
    let (after, limit) = (seq_cursor(q.after.as_deref())?, limit(q.limit)?);
    let mut items = state.run(move |s| s.audit_events(after, limit as u32)).await?;
    if caller.staff.role != Role::Medical {
        // Injuries and complaints of ill-treatment are medical entries: other roles see that the
        // admission recorded them, not what they say (the hashes cover the full text).
        for event in items.iter_mut().filter(|e| e.action == "person.admit") {
            for field in ["injuries", "complaints"] {
                if let Some(entries) = event.payload.get_mut(field) {
                    let count = entries.as_array().map(Vec::len).unwrap_or(0);
                    *entries = serde_json::json!({ "withheld": "medical", "entries": count });
                }
            }
        }
    }
    let next = (items.len() == limit).then(|| items.last().map(|e| encode_cursor(&e.seq.to_string()))).flatten();
    Ok(Json(EventPage { items, next }))
}

#[derive(Serialize, ToSchema)]
struct Verification {
    ok: bool,
    events: u64,
    rows: u64,
    /// `SEQ:HASH` of the last event verified; note it to detect a cut-off history later.
    head: String,
    broken_at: Option<i64>,
    reason: Option<String>,
    projection_problems: Vec<String>,
}

/// Recompute the audit chain, every audited row and the projections.
#[utoipa::path(get, path = "/api/v1/audit/verification", tag = "oversight",
    responses((status = 200, body = Verification)))]
async fn verify_audit(State(state): State<AppState>) -> ApiResult<Json<Verification>> {
    let v = state.run(|s| s.verify_audit(&mut |_, _| {})).await?;
    Ok(Json(Verification {
        ok: v.broken.is_none() && v.projection_problems.is_empty(),
        events: v.events,
        rows: v.rows,
        head: format!("{}:{}", v.events, v.head_hash),
        broken_at: v.broken.as_ref().map(|b| b.seq),
        reason: v.broken.map(|b| b.reason),
        projection_problems: v.projection_problems,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReadsQuery {
    /// Only reads of this person's record.
    person: Option<String>,
    /// Only reads by this staff member.
    reader: Option<String>,
    /// Cursor from the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct ReadPage {
    items: Vec<ReadRecord>,
    next: Option<String>,
}

/// Who read which person's record, when and through which route (Mandela Rule 9).
#[utoipa::path(get, path = "/api/v1/reads", tag = "oversight", params(ReadsQuery),
    responses((status = 200, body = ReadPage), (status = 400, body = Problem)))]
async fn list_reads(
    State(state): State<AppState>,
    q: Result<ApiQuery<ReadsQuery>, ApiError>,
) -> ApiResult<Json<ReadPage>> {
    let q = query(q)?;
    let (after, limit) = (seq_cursor(q.after.as_deref())?, limit(q.limit)?);
    let items = state.run(move |s| s.reads(q.person.as_deref(), q.reader.as_deref(), after, limit as u32)).await?;
    let next = (items.len() == limit).then(|| items.last().map(|r| encode_cursor(&r.id.to_string()))).flatten();
    Ok(Json(ReadPage { items, next }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::custody::{OutReason, ReleaseReason};

    #[test]
    fn only_the_right_roles_record_each_kind_of_movement() {
        let place = MovementKind::Place { cell: "A".into(), bed: None };
        let release = MovementKind::Release { reason: ReleaseReason::Bail, to_country: None };
        let out = MovementKind::Out { reason: OutReason::Court };
        assert!(may_record(Role::Officer, &place) && may_record(Role::Officer, &out));
        assert!(!may_record(Role::Officer, &release));
        assert!(may_record(Role::Records, &release) && !may_record(Role::Records, &place));
        assert!(!may_record(Role::Monitor, &place) && !may_record(Role::Medical, &release));
    }
}
