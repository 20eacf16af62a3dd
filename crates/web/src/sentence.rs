//! Sentence routes: release-date calculation (nothing is stored).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use domain::sentence::{SentenceInput, SentenceReport};

use crate::problem::{ApiResult, Problem};
use crate::request::Parsed;
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(calculate_sentences))
}

/// Calculate a release date: each sentence's expiry (start, or the day after the sentence it is
/// consecutive to, plus years, then months, then days, less one day, less the distinct days on
/// remand that count toward it), the release date (the latest expiry) and a trace in plain words.
/// Nothing is stored. Wrong input answers 422 naming each wrong field (`sentences[1].consecutive_to`).
#[utoipa::path(post, path = "/api/v1/sentences/calculation", tag = "sentences", request_body = SentenceInput,
    responses((status = 200, body = SentenceReport), (status = 400, body = Problem), (status = 422, body = Problem)))]
async fn calculate_sentences(
    State(state): State<AppState>,
    Parsed(input): Parsed<SentenceInput>,
) -> ApiResult<Response> {
    // Serialised straight from the calculation, so the expiries keep the order the sentences were given in.
    let json = state
        .run(move |s| {
            let calculation = s.calculate_sentences(&input)?;
            serde_json::to_vec(&calculation).map_err(|e| service::ServiceError::Internal(e.to_string()))
        })
        .await?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], json).into_response())
}
