//! Housing routes: capacity line and overrides, unit designations, classification, security
//! threat groups, keep-apart rules, allocation and roll counts.

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

use domain::separation::Designation;
use service::allocate::{AllocateRequest, Allocation};
use service::count::{CellCount, CountView, Resolve, StartCount};
use service::housing::{
    AffiliationRequest, Classified, ClassifyRequest, KeepApartRecorded, KeepApartRequest, KeepApartStatistics,
    KeepApartView, OverrideRequest, PartyRef, PersonHousing, PolicyRequest,
};
use store::housing::{Affiliation, CapacityOverride, HousingPolicy, ThreatGroup};
use store::Occupant;

use crate::access::Caller;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::request::{body, idempotent, in_scope, limit, open_person, parse, person_in_scope, query, ApiQuery, Parsed};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_policy, set_policy))
        .routes(routes!(record_override))
        .routes(routes!(list_overrides))
        .routes(routes!(designate_unit))
        .routes(routes!(classify))
        .routes(routes!(get_housing))
        .routes(routes!(affiliate))
        .routes(routes!(list_groups, add_group))
        .routes(routes!(list_keep_apart, add_keep_apart))
        .routes(routes!(end_keep_apart))
        .routes(routes!(allocate))
        .routes(routes!(list_counts, start_count))
        .routes(routes!(get_count))
        .routes(routes!(enter_counts))
        .routes(routes!(resolve_count))
        .routes(routes!(clear_count))
        .routes(routes!(expected_people))
        .routes(routes!(keep_apart_statistics))
}

fn now() -> domain::time::Instant {
    chrono::Utc::now()
}

/// The facilities a caller may list: all for national roles, their own otherwise.
fn visible(caller: &Caller) -> Option<Vec<String>> {
    (!caller.staff.role.national()).then(|| caller.staff.facilities.clone())
}

/// Staff of a facility may make or lift only rules about people they may see; a rule between two
/// groups binds every facility, so only national roles make or lift one.
async fn rule_in_scope(state: &AppState, caller: &Caller, a: &PartyRef, b: &PartyRef) -> ApiResult<()> {
    if a.person.is_none() && b.person.is_none() && !caller.staff.role.national() {
        return Err(ApiError::forbidden(
            "a rule between two groups binds every facility: ask a national administrator",
        ));
    }
    for number in [&a.person, &b.person].into_iter().flatten() {
        person_in_scope(state, caller, number).await?;
    }
    Ok(())
}

/// A facility's capacity line and adult age now.
#[utoipa::path(get, path = "/api/v1/facilities/{code}/housing-policy", tag = "housing", params(("code" = String, Path)),
    responses((status = 200, body = HousingPolicy), (status = 404, body = Problem)))]
async fn get_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
) -> ApiResult<Json<HousingPolicy>> {
    in_scope(&caller, std::slice::from_ref(&code), "facility", &code)?;
    Ok(Json(state.run(move |s| s.housing_policy(&code, now())).await?))
}

/// Choose the capacity placements may not exceed (declared, operational, beds, icrc, cpt or null)
/// and the age of adulthood, from now on.
#[utoipa::path(post, path = "/api/v1/facilities/{code}/housing-policy", tag = "housing", params(("code" = String, Path)),
    request_body = PolicyRequest,
    responses((status = 200, body = HousingPolicy), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn set_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
    Parsed(request): Parsed<PolicyRequest>,
) -> ApiResult<Json<HousingPolicy>> {
    in_scope(&caller, std::slice::from_ref(&code), "facility", &code)?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.set_housing_policy(&ctx, &code, &request)).await?))
}

/// Record a director's override allowing placements over the capacity line, with a reason and
/// an expiry, for the facility or one cell.
#[utoipa::path(post, path = "/api/v1/facilities/{code}/overrides", tag = "housing", params(("code" = String, Path)),
    request_body = OverrideRequest,
    responses((status = 201, body = CapacityOverride), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn record_override(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let request: OverrideRequest = parse(&bytes)?;
    in_scope(&caller, std::slice::from_ref(&code), "facility", &code)?;
    let ctx = caller.staff.context(now());
    let route = format!("POST /api/v1/facilities/{code}/overrides");
    idempotent(&state, &caller, &headers, &route, &bytes, StatusCode::CREATED, move |tx| {
        service::housing::record_override_in(tx, &ctx, &code, &request)
    })
    .await
}

/// Every capacity override of the caller's facilities, newest first, in force or not.
#[utoipa::path(get, path = "/api/v1/overrides", tag = "housing", responses((status = 200, body = Vec<CapacityOverride>)))]
async fn list_overrides(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<CapacityOverride>>> {
    let facilities = visible(&caller);
    Ok(Json(state.run(move |s| s.capacity_overrides(facilities.as_deref())).await?))
}

/// Designate a unit for categories (sex, age group, legal status, regime); an empty object
/// lifts the designation.
#[utoipa::path(post, path = "/api/v1/facilities/{code}/units/{unit}/designation", tag = "housing",
    params(("code" = String, Path), ("unit" = String, Path)), request_body = Designation,
    responses((status = 200, body = Designation), (status = 404, body = Problem)))]
async fn designate_unit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((code, unit)): Path<(String, String)>,
    Parsed(designation): Parsed<Designation>,
) -> ApiResult<Json<Designation>> {
    in_scope(&caller, std::slice::from_ref(&code), "facility", &code)?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.designate_unit(&ctx, &code, &unit, &designation)).await?))
}

/// Classify a person. Cellmates the new classification conflicts with are listed to be moved.
#[utoipa::path(post, path = "/api/v1/people/{number}/classification", tag = "housing",
    params(("number" = String, Path)), request_body = ClassifyRequest,
    responses((status = 200, body = Classified), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn classify(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    Parsed(request): Parsed<ClassifyRequest>,
) -> ApiResult<Json<Classified>> {
    person_in_scope(&state, &caller, &number).await?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.classify(&ctx, &number, &request)).await?))
}

/// A person's categories, classification history, group affiliations and keep-apart rules.
/// The read is logged.
#[utoipa::path(get, path = "/api/v1/people/{number}/housing", tag = "housing", params(("number" = String, Path)),
    responses((status = 200, body = PersonHousing), (status = 404, body = Problem)))]
async fn get_housing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
) -> ApiResult<Json<PersonHousing>> {
    open_person(&state, &caller, &number, "GET /api/v1/people/{number}/housing").await?;
    let staff = caller.staff.clone();
    let housing = state
        .run(move |s| {
            let mut housing = s.person_housing(&number, now())?;
            if !staff.role.national() {
                for rule in &mut housing.keep_apart {
                    mask_outside(s, &staff, &mut rule.a)?;
                    mask_outside(s, &staff, &mut rule.b)?;
                }
            }
            Ok(housing)
        })
        .await?;
    Ok(Json(housing))
}

/// What staff of a facility see in place of a person held elsewhere named by a rule.
const OUTSIDE: &str = "(outside your facilities)";

/// Hide the number of a person outside the caller's facilities; true when the person is visible.
pub(crate) fn mask_outside(
    s: &service::Service<store::Database>,
    staff: &service::staff::Staff,
    party: &mut PartyRef,
) -> service::ServiceResult<bool> {
    let Some(number) = &party.person else { return Ok(false) };
    if s.person_scope(number)?.facilities.iter().any(|f| staff.sees(f)) {
        return Ok(true);
    }
    party.person = Some(OUTSIDE.into());
    Ok(false)
}

/// Record a person's affiliation with a security threat group, or its end.
#[utoipa::path(post, path = "/api/v1/people/{number}/affiliations", tag = "housing",
    params(("number" = String, Path)), request_body = AffiliationRequest,
    responses((status = 200, body = Vec<Affiliation>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn affiliate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    Parsed(request): Parsed<AffiliationRequest>,
) -> ApiResult<Json<Vec<Affiliation>>> {
    person_in_scope(&state, &caller, &number).await?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.affiliate(&ctx, &number, &request)).await?))
}

/// Security threat groups.
#[utoipa::path(get, path = "/api/v1/groups", tag = "housing", responses((status = 200, body = Vec<ThreatGroup>)))]
async fn list_groups(State(state): State<AppState>) -> ApiResult<Json<Vec<ThreatGroup>>> {
    Ok(Json(state.run(|s| s.groups()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    /// Short code, for example `MS13`.
    code: domain::text::Code,
    /// Name.
    name: domain::text::ShortText,
}

/// Record a security threat group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "housing", request_body = NewGroup,
    responses((status = 201, body = ThreatGroup), (status = 400, body = Problem), (status = 409, body = Problem)))]
async fn add_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Parsed(group): Parsed<NewGroup>,
) -> ApiResult<(StatusCode, Json<ThreatGroup>)> {
    let ctx = caller.staff.context(now());
    Ok((StatusCode::CREATED, Json(state.run(move |s| s.add_group(&ctx, &group.code, &group.name)).await?)))
}

/// Keep-apart rules, in force or not. Staff of a facility see rules between groups and rules
/// naming someone they may see.
#[utoipa::path(get, path = "/api/v1/keep-apart", tag = "housing", responses((status = 200, body = Vec<KeepApartView>)))]
async fn list_keep_apart(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<KeepApartView>>> {
    let staff = caller.staff.clone();
    let rules = state
        .run(move |s| {
            let all = s.keep_apart_rules(now())?;
            if staff.role.national() {
                return Ok(all);
            }
            let mut shown = Vec::new();
            for mut rule in all {
                let named = [&rule.a.person, &rule.b.person].into_iter().flatten().count();
                let seen = usize::from(mask_outside(s, &staff, &mut rule.a)?)
                    + usize::from(mask_outside(s, &staff, &mut rule.b)?);
                if named == 0 || seen > 0 {
                    shown.push(rule);
                }
            }
            Ok(shown)
        })
        .await?;
    Ok(Json(rules))
}

/// Record a keep-apart rule between two people, a person and a group, or two groups, at cell,
/// unit or facility scope. People who already break it are listed, to be moved.
#[utoipa::path(post, path = "/api/v1/keep-apart", tag = "housing", request_body = KeepApartRequest,
    responses((status = 201, body = KeepApartRecorded), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn add_keep_apart(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let request: KeepApartRequest = parse(&bytes)?;
    rule_in_scope(&state, &caller, &request.a, &request.b).await?;
    let ctx = caller.staff.context(now());
    idempotent(&state, &caller, &headers, "POST /api/v1/keep-apart", &bytes, StatusCode::CREATED, move |tx| {
        service::housing::add_keep_apart_in(tx, &ctx, &request)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EndRule {
    /// Why the rule is lifted.
    reason: String,
}

/// Lift a keep-apart rule before its expiry; it stays in the history.
#[utoipa::path(post, path = "/api/v1/keep-apart/{id}/end", tag = "housing", params(("id" = i64, Path)),
    request_body = EndRule, responses((status = 200, body = KeepApartView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn end_keep_apart(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Parsed(request): Parsed<EndRule>,
) -> ApiResult<Json<KeepApartView>> {
    let rule = state
        .run(move |s| s.keep_apart_rules(now()))
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::not_found("keep-apart rule", &id.to_string()))?;
    rule_in_scope(&state, &caller, &rule.a, &rule.b)
        .await
        .map_err(|_| ApiError::not_found("keep-apart rule", &id.to_string()))?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.end_keep_apart(&ctx, id, &request.reason)).await?))
}

/// Place every unplaced person of the facility (or the listed ones) in cells without breaking any
/// rule, balancing the load; `dry_run` shows the plan without recording it. All or nothing.
#[utoipa::path(post, path = "/api/v1/facilities/{code}/allocation", tag = "housing", params(("code" = String, Path)),
    request_body = AllocateRequest,
    responses((status = 200, body = Allocation), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn allocate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
    Parsed(request): Parsed<AllocateRequest>,
) -> ApiResult<Json<Allocation>> {
    in_scope(&caller, std::slice::from_ref(&code), "facility", &code)?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.allocate(&ctx, &code, &request)).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CountsQuery {
    /// Only this facility.
    facility: Option<String>,
    /// Counts numbered below this (the previous page's `next`).
    before: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

/// A page of counts.
#[derive(Serialize, ToSchema)]
struct CountPage {
    items: Vec<CountView>,
    /// `before` for the next page; absent on the last page.
    next: Option<i64>,
}

/// Roll counts, newest first: their history stays visible to monitors.
#[utoipa::path(get, path = "/api/v1/counts", tag = "counts", params(CountsQuery),
    responses((status = 200, body = CountPage), (status = 404, body = Problem)))]
async fn list_counts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Result<ApiQuery<CountsQuery>, ApiError>,
) -> ApiResult<Json<CountPage>> {
    let params = query(params)?;
    let limit = limit(params.limit)?;
    let facilities = match params.facility {
        Some(code) => {
            in_scope(&caller, std::slice::from_ref(&code), "facility", &code)?;
            Some(vec![code])
        }
        None => visible(&caller),
    };
    let before = params.before.unwrap_or(i64::MAX);
    let items = state.run(move |s| s.counts_of(facilities.as_deref(), before, limit as u32, now())).await?;
    let next = (items.len() == limit).then(|| items.last().map(|c| c.id)).flatten();
    Ok(Json(CountPage { items, next }))
}

/// Start a roll count of a facility or unit: the expected people of each cell are computed now.
#[utoipa::path(post, path = "/api/v1/counts", tag = "counts", request_body = StartCount,
    responses((status = 201, body = CountView), (status = 404, body = Problem)))]
async fn start_count(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let request: StartCount = parse(&bytes)?;
    in_scope(&caller, std::slice::from_ref(&request.facility), "facility", &request.facility)?;
    let ctx = caller.staff.context(now());
    idempotent(&state, &caller, &headers, "POST /api/v1/counts", &bytes, StatusCode::CREATED, move |tx| {
        service::count::start_count_in(tx, &ctx, &request)
    })
    .await
}

async fn count_in_scope(state: &AppState, caller: &Caller, id: i64) -> ApiResult<CountView> {
    let count = state.run(move |s| s.count(id, now())).await?;
    in_scope(caller, std::slice::from_ref(&count.facility), "roll count", &id.to_string())?;
    Ok(count)
}

/// One roll count: each cell's expected and counted people and the differences left to explain.
#[utoipa::path(get, path = "/api/v1/counts/{id}", tag = "counts", params(("id" = i64, Path)),
    responses((status = 200, body = CountView), (status = 404, body = Problem)))]
async fn get_count(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CountView>> {
    Ok(Json(count_in_scope(&state, &caller, id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CountEntries {
    /// What was counted per cell; a cell entered again is a recount.
    counts: Vec<CellCount>,
}

/// Enter what officers counted, cell by cell.
#[utoipa::path(post, path = "/api/v1/counts/{id}/entries", tag = "counts", params(("id" = i64, Path)),
    request_body = CountEntries,
    responses((status = 200, body = CountView), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn enter_counts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Parsed(entries): Parsed<CountEntries>,
) -> ApiResult<Json<CountView>> {
    count_in_scope(&state, &caller, id).await?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.enter_counts(&ctx, id, &entries.counts)).await?))
}

/// Explain a person missing from their cell: found elsewhere (the move is recorded unless they
/// were returned at once) or unaccounted for (an escape incident is opened).
#[utoipa::path(post, path = "/api/v1/counts/{id}/resolutions", tag = "counts", params(("id" = i64, Path)),
    request_body = Resolve,
    responses((status = 200, body = CountView), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn resolve_count(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Parsed(request): Parsed<Resolve>,
) -> ApiResult<Json<CountView>> {
    count_in_scope(&state, &caller, id).await?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.resolve_count(&ctx, id, &request)).await?))
}

/// Clear a count: refused while any cell is uncounted or a difference is unexplained.
#[utoipa::path(post, path = "/api/v1/counts/{id}/clearance", tag = "counts", params(("id" = i64, Path)),
    responses((status = 200, body = CountView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn clear_count(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CountView>> {
    count_in_scope(&state, &caller, id).await?;
    let ctx = caller.staff.context(now());
    Ok(Json(state.run(move |s| s.clear_count(&ctx, id)).await?))
}

/// Who should have been in one cell when the count started (placed and not out).
#[utoipa::path(get, path = "/api/v1/counts/{id}/cells/{cell}/expected", tag = "counts",
    params(("id" = i64, Path), ("cell" = String, Path)),
    responses((status = 200, body = Vec<Occupant>), (status = 404, body = Problem)))]
async fn expected_people(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, cell)): Path<(i64, String)>,
) -> ApiResult<Json<Vec<Occupant>>> {
    count_in_scope(&state, &caller, id).await?;
    let people = state.run(move |s| s.count_expected_people(id, &cell)).await?;
    let route = "GET /api/v1/counts/{id}/cells/{cell}/expected";
    crate::request::log_reads_of(&state, &caller, people.iter().map(|o| o.number.as_str()), route).await?;
    Ok(Json(people))
}

/// Keep-apart statistics: rules in force by scope and kind, and per facility the people held,
/// those affiliated with a security threat group and the rules naming someone held there.
#[utoipa::path(get, path = "/api/v1/statistics/keep-apart", tag = "statistics",
    responses((status = 200, body = KeepApartStatistics)))]
async fn keep_apart_statistics(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<KeepApartStatistics>> {
    let staff = caller.staff.clone();
    Ok(Json(state.run(move |s| s.keep_apart_statistics(|f| staff.sees(f), now())).await?))
}
