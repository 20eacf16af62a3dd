//! Identity resolution under `/api/v1`: candidates for an intake identity, explicit merges and
//! un-merges of people's records, and each person's lineage of merges. Facility staff see and
//! merge only people of their facilities (404 outside them).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use service::identity::{Candidate, CandidatesRequest, Lineage, MergeRequest, Merged, UnmergeRequest, Unmerged};

use crate::access::Caller;
use crate::problem::{ApiResult, Problem};
use crate::request::{body, idempotent, open_person, parse, person_in_scope, Parsed};
use crate::AppState;

/// The identity routes, merged into the API router.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(find_candidates))
        .routes(routes!(merge_person))
        .routes(routes!(unmerge_person))
        .routes(routes!(get_lineage))
}

/// People on record who may be the person at intake, best first, each with a score (0 to 1) and
/// the reasons in words: the same document, the same name and date of birth (accents, case, word
/// order, a missing second surname and spelling variants allowed; a date with day and month
/// swapped or one digit off scores lower). People merged away are replaced by their survivor.
/// Staff see only people of their facilities. Nothing is written.
#[utoipa::path(post, path = "/api/v1/identity/candidates", tag = "identity", request_body = CandidatesRequest,
    responses((status = 200, body = Vec<Candidate>), (status = 400, body = Problem), (status = 422, body = Problem)))]
async fn find_candidates(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Parsed(request): Parsed<CandidatesRequest>,
) -> ApiResult<Json<Vec<Candidate>>> {
    let staff = caller.staff.clone();
    let found = state.run(move |s| s.identity_candidates(&request.identity, request.limit, |f| staff.sees(f))).await?;
    let route = "POST /api/v1/identity/candidates";
    crate::request::log_reads_of(&state, &caller, found.iter().map(|c| c.number.as_str()), route).await?;
    Ok(Json(found))
}

/// Merge this person's record into another (`into`) with the reason: the record is kept, says
/// whom it was merged into, and no longer appears as a candidate. Refused into oneself, into a
/// record merged away, for a record already merged, or when both are in custody now.
/// Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/people/{number}/merge", tag = "identity",
    params(("number" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "replays return the first answer")),
    request_body = MergeRequest,
    responses((status = 201, body = Merged), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)))]
async fn merge_person(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let request: MergeRequest = parse(&bytes)?;
    person_in_scope(&state, &caller, &number).await?;
    person_in_scope(&state, &caller, &request.into).await?;
    let ctx = caller.staff.context(chrono::Utc::now());
    let route = format!("POST /api/v1/people/{number}/merge");
    idempotent(&state, &caller, &headers, &route, &bytes, StatusCode::CREATED, move |tx| {
        service::identity::merge_in(tx, &ctx, &number, &request)
    })
    .await
}

/// Undo the merge of this person's record, with the reason; refused when it is not merged.
/// Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/people/{number}/unmerge", tag = "identity",
    params(("number" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "replays return the first answer")),
    request_body = UnmergeRequest,
    responses((status = 201, body = Unmerged), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)))]
async fn unmerge_person(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bytes = body(raw)?;
    let request: UnmergeRequest = parse(&bytes)?;
    person_in_scope(&state, &caller, &number).await?;
    let ctx = caller.staff.context(chrono::Utc::now());
    let route = format!("POST /api/v1/people/{number}/unmerge");
    idempotent(&state, &caller, &headers, &route, &bytes, StatusCode::CREATED, move |tx| {
        service::identity::unmerge_in(tx, &ctx, &number, &request)
    })
    .await
}

/// A person's merges: the record they are merged into now, the records merged into them now, and
/// every merge and un-merge naming them. The read is logged.
#[utoipa::path(get, path = "/api/v1/people/{number}/lineage", tag = "identity", params(("number" = String, Path)),
    responses((status = 200, body = Lineage), (status = 404, body = Problem)))]
async fn get_lineage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
) -> ApiResult<Json<Lineage>> {
    open_person(&state, &caller, &number, "GET /api/v1/people/{number}/lineage").await?;
    Ok(Json(state.run(move |s| s.person_lineage(&number)).await?))
}
