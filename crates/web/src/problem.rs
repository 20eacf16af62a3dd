//! Errors as RFC 9457 problem details: a stable `type`, a human `detail`, and for validation the
//! fields and what is wrong with each. Internal error text is logged, never sent.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use domain::FieldError;
use service::ServiceError;

/// One wrong field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    /// Path of the field, for example `identity.date_of_birth`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, for example `urn:custodia:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this case, in words.
    pub detail: String,
    /// The rule that refused the request, when one did (for example `custody.sequence`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For validation problems: each wrong field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<ProblemField>,
}

/// An error answered to the client as a problem document.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Box<Problem>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A problem of the given status, stable name and detail.
    pub fn new(status: StatusCode, name: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            problem: Box::new(Problem {
                kind: format!("urn:custodia:problem:{name}"),
                title: status.canonical_reason().unwrap_or("Error").to_string(),
                status: status.as_u16(),
                detail: detail.into(),
                rule: None,
                fields: Vec::new(),
            }),
            retry_after: None,
        }
    }

    /// The same, telling the client to try again after `seconds` (`Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 422 with the wrong fields listed.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let detail = fields.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; ");
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail);
        e.problem.fields = fields.into_iter().map(|f| ProblemField { field: f.field, problem: f.problem }).collect();
        e
    }

    /// 400 for a request that cannot be read at all.
    pub fn bad_request(name: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, name, detail)
    }

    /// 404, also used for records outside the caller's scope, so that they cannot be told apart.
    pub fn not_found(what: &str, key: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", format!("{what} `{key}` not found"))
    }

    /// 401 without credentials or with bad ones.
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "log in or send a valid bearer token")
    }

    /// 403 for a role that may not call this route.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 500 with nothing internal revealed; the cause is logged.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed; the error was logged")
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem as it would be sent.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(fields) => ApiError::validation(fields),
            ServiceError::NotFound { what, key } => ApiError::not_found(what, &key),
            ServiceError::Refused { rule, detail } => {
                let (status, name) = match rule {
                    "auth.invalid_credentials" => (StatusCode::UNAUTHORIZED, "invalid-credentials"),
                    "auth.throttled" => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
                    "record.stale" => (StatusCode::PRECONDITION_FAILED, "stale-record"),
                    "idempotency.key_reused" => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused"),
                    _ => (StatusCode::CONFLICT, "refused"),
                };
                let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
                    .then(|| detail.split_whitespace().find_map(|w| w.parse::<u64>().ok()))
                    .flatten();
                let mut e = ApiError::new(status, name, detail);
                e.problem.rule = Some(rule.to_string());
                e.retry_after = retry_after;
                e
            }
            ServiceError::Conflict(detail) => ApiError::new(StatusCode::CONFLICT, "conflict", detail),
            // Both pass: the server comes back, or the other transaction has finished.
            ServiceError::Store(e @ (store::StoreError::Unavailable { .. } | store::StoreError::Retry(_))) => {
                tracing::warn!(cause = %e, "database busy or unreachable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is busy or unreachable; try again shortly",
                )
                .retry_after(1)
            }
            ServiceError::Store(e) => ApiError::internal(e),
            ServiceError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut response = (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = seconds.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Every answer of the API: never kept by a cache (they show people's records); an error axum's
/// own extractors answered in plain text (a path segment that is not a number, say) becomes a
/// problem document like every other; a 401 says how to authenticate (RFC 9110).
pub(crate) async fn finish(response: Response) -> Response {
    let status = response.status();
    let problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    let mut response = if (status.is_client_error() || status.is_server_error()) && !problem {
        let text = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
        let name = match status {
            StatusCode::BAD_REQUEST => "bad-request",
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            _ if status.is_server_error() => "internal",
            _ => "refused",
        };
        let detail = String::from_utf8_lossy(&text).trim().to_string();
        let detail = if detail.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { detail };
        ApiError::new(status, name, detail).into_response()
    } else {
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"custodia\""));
    }
    response
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
