//! What handlers of the API and the pages share, so that imports run one way (topic modules and
//! pages -> `request` -> service): read and parse a body strictly, read query parameters and
//! cursors, check that a record is in the caller's facilities, log reads of people, and run a
//! command once per `Idempotency-Key`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use domain::time::Instant;
use service::report::{Measure, OccupancyReport};
use service::staff::{IdempotencyKey, NewRead, Staff};

use crate::access::Caller;
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

/// Most items one page may hold.
pub(crate) const MAX_LIMIT: u32 = 500;
/// Items a page holds when `limit` is absent.
pub(crate) const DEFAULT_LIMIT: u32 = 100;

/// A JSON body, read and parsed as [`body`] and [`parse`] do: a handler takes
/// `Parsed(request): Parsed<T>` as its last argument instead of opening the body itself.
pub(crate) struct Parsed<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Parsed<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await;
        parse(&body(bytes)?).map(Parsed)
    }
}

/// The request body, or a problem: 413 when too large.
pub(crate) fn body(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                format!("the request body is larger than {} bytes", crate::MAX_BODY_BYTES),
            )
        } else {
            ApiError::bad_request("unreadable-body", "the request body could not be read")
        }
    })
}

/// Parse JSON: 400 when it is not JSON at all, 422 naming the field when it does not fit or
/// when an object repeats a key.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    no_repeated_keys(bytes)?;
    object_body(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request("malformed-json", format!("the body is not valid JSON: {inner}"))
        } else {
            let field = if path == "." { "body".to_string() } else { path };
            ApiError::validation(vec![domain::FieldError::new(field, inner.to_string())])
        }
    })
}

/// Every body this API takes is a JSON object; serde would also read a struct from an array of
/// its fields in order (`[null, null]`), which no client means.
fn object_body(bytes: &[u8]) -> ApiResult<()> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => {
            Err(ApiError::validation(vec![domain::FieldError::new("body", "must be a JSON object")]))
        }
        _ => Ok(()),
    }
}

/// 422 naming the first key an object repeats. JSON parsers disagree on which of two values they
/// keep (serde keeps the last, others the first), so a body that says two things is refused.
/// A body that is not JSON passes here and is refused by the parse that follows.
pub(crate) fn no_repeated_keys(bytes: &[u8]) -> ApiResult<()> {
    use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};
    use std::cell::RefCell;

    struct Walk<'a> {
        path: String,
        repeated: &'a RefCell<Option<String>>,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
            let mut i = 0;
            while items
                .next_element_seed(Walk { path: format!("{}[{i}]", self.path), repeated: self.repeated })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = fields.next_key::<String>()? {
                let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
                if !seen.insert(key) {
                    *self.repeated.borrow_mut() = Some(path);
                    return Err(A::Error::custom("repeated key"));
                }
                fields.next_value_seed(Walk { path, repeated: self.repeated })?;
            }
            Ok(())
        }
    }

    let repeated = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = Walk { path: String::new(), repeated: &repeated }.deserialize(&mut de);
    match repeated.into_inner() {
        Some(field) => Err(ApiError::validation(vec![domain::FieldError::new(field, "is given more than once")])),
        None => Ok(()),
    }
}

/// Deserialise an already parsed value, naming the field that does not fit.
pub(crate) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_string() } else { path };
        ApiError::validation(vec![domain::FieldError::new(field, e.into_inner().to_string())])
    })
}

/// Query parameters, read as strictly as a body: 422 naming the parameter that does not fit, so
/// that `limit=-1` (not a number this API takes) is answered as `limit=0` is.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        let text = parts.uri.query().unwrap_or("");
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(text.as_bytes()));
        serde_path_to_error::deserialize(pairs).map(ApiQuery).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "query".to_string() } else { path };
            ApiError::validation(vec![domain::FieldError::new(field, e.into_inner().to_string())])
        })
    }
}

pub(crate) fn query<T>(query: Result<ApiQuery<T>, ApiError>) -> ApiResult<T> {
    query.map(|ApiQuery(q)| q)
}

pub(crate) fn limit(limit: Option<u32>) -> ApiResult<usize> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        0 => Err(ApiError::validation(vec![domain::FieldError::new("limit", "must be at least 1")])),
        n if n > MAX_LIMIT => {
            Err(ApiError::validation(vec![domain::FieldError::new("limit", format!("must be at most {MAX_LIMIT}"))]))
        }
        n => Ok(n as usize),
    }
}

/// Cursors are opaque to clients: the last key of the previous page, base64url.
pub(crate) fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

pub(crate) fn decode_cursor(cursor: Option<&str>) -> ApiResult<Option<String>> {
    cursor
        .map(|c| URL_SAFE_NO_PAD.decode(c).ok().and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(bad_cursor))
        .transpose()
}

/// A cursor that is not one this API gave: refused like any other parameter that does not fit.
fn bad_cursor() -> ApiError {
    ApiError::validation(vec![domain::FieldError::new("after", "is not a cursor this API returned")])
}

pub(crate) fn seq_cursor(cursor: Option<&str>) -> ApiResult<i64> {
    match decode_cursor(cursor)? {
        None => Ok(0),
        Some(text) => text.parse().map_err(|_| bad_cursor()),
    }
}

/// The instant of an `at` parameter; now when absent.
pub(crate) fn instant(at: Option<&str>) -> ApiResult<Instant> {
    match at {
        None => Ok(chrono::Utc::now()),
        Some(text) => instant_named("at", text),
    }
}

/// An RFC 3339 instant given as the parameter `field`, a refusal naming that field otherwise.
pub(crate) fn instant_named(field: &str, text: &str) -> ApiResult<Instant> {
    domain::time::parse_rfc3339(text)
        .map_err(|problem| ApiError::validation(vec![domain::FieldError::new(field, problem)]))
}

/// A person outside the caller's facilities answers exactly as one that does not exist.
pub(crate) async fn person_in_scope(
    state: &AppState,
    caller: &Caller,
    number: &str,
) -> ApiResult<service::report::PersonScope> {
    let scope = {
        let number = number.to_string();
        state.run(move |s| s.person_scope(&number)).await?
    };
    in_scope(caller, &scope.facilities, "person", number)?;
    Ok(scope)
}

/// A record outside the caller's facilities answers exactly as one that does not exist.
pub(crate) fn in_scope(caller: &Caller, facilities: &[String], what: &str, key: &str) -> ApiResult<()> {
    if facilities.iter().any(|f| caller.staff.sees(f)) {
        Ok(())
    } else {
        Err(ApiError::not_found(what, key))
    }
}

/// Run a command in one transaction with its `Idempotency-Key`: a replay of the same request gets
/// the stored answer; the same key with another request (body, route or record) is refused.
pub(crate) async fn idempotent<T, F>(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    route: &str,
    request: &[u8],
    status: StatusCode,
    work: F,
) -> ApiResult<Response>
where
    T: Serialize + Send + 'static,
    F: FnMut(&mut store::SqlTx<'_>) -> service::ServiceResult<T> + Send + 'static,
{
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            // Visible ASCII and inner spaces (HTTP has already dropped spaces and tabs at the ends).
            let visible = |k: &str| k.bytes().all(|b| (b' '..=b'~').contains(&b));
            let key =
                value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 200 && visible(k)).ok_or_else(|| {
                    ApiError::bad_request("bad-idempotency-key", "Idempotency-Key must be 1 to 200 visible characters")
                })?;
            Some(key.to_string())
        }
    };
    let mut digest = Sha256::new();
    digest.update(route.as_bytes());
    digest.update(b"\n");
    digest.update(request);
    let hash = hex::encode(digest.finalize());
    let actor = caller.staff.name.clone();
    let answer = state
        .run(move |s| {
            let key = key.as_deref().map(|key| IdempotencyKey {
                actor: &actor,
                key,
                request_sha256: &hash,
                at: chrono::Utc::now(),
            });
            s.run_idempotent(key, status.as_u16(), work)
        })
        .await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(status);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], answer.body).into_response();
    if answer.replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The report restricted to what the staff member sees, with the total recomputed over it.
pub(crate) fn scoped(mut report: OccupancyReport, staff: &Staff) -> OccupancyReport {
    if staff.role.national() {
        return report;
    }
    report.facilities.retain(|f| staff.sees(&f.code));
    let mut capacity = domain::estate::Capacity::default();
    let mut population = 0;
    for f in &report.facilities {
        capacity += f.measure.capacity;
        population += f.measure.population;
    }
    report.total = Measure::new(population, capacity);
    report.in_transit = 0;
    report
}

/// Check the caller may see the person, log the read (Mandela Rule 9), and give their scope and version.
pub(crate) async fn open_person(
    state: &AppState,
    caller: &Caller,
    number: &str,
    route: &'static str,
) -> ApiResult<service::report::PersonScope> {
    let scope = person_in_scope(state, caller, number).await?;
    log_read(state, caller, number, route).await?;
    Ok(scope)
}

pub(crate) async fn log_read(state: &AppState, caller: &Caller, number: &str, route: &'static str) -> ApiResult<()> {
    let read = NewRead {
        reader: caller.staff.name.clone(),
        person: number.to_string(),
        route: route.to_string(),
        at: chrono::Utc::now(),
    };
    state.log_read(read).await
}

/// Log as reads the people a list, a search or an incident shows by name (Mandela Rule 9): a name
/// beside a number is part of the record. Each person once, however often the answer names them.
pub(crate) async fn log_reads_of<'a>(
    state: &AppState,
    caller: &Caller,
    numbers: impl IntoIterator<Item = &'a str>,
    route: &'static str,
) -> ApiResult<()> {
    let at = chrono::Utc::now();
    let mut seen = std::collections::HashSet::new();
    let reads = numbers
        .into_iter()
        .filter(|number| seen.insert(*number))
        .map(|number| NewRead {
            reader: caller.staff.name.clone(),
            person: number.to_string(),
            route: route.to_string(),
            at,
        })
        .collect();
    state.log_reads(reads).await
}

/// The version an `If-Match` header asks for: `None` when absent or `*`; 412 when it is not one
/// of this API's tags.
pub(crate) fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    // Exactly the documented form, `"v<digits>"` (weak or not); anything else is malformed.
    let digits = text
        .strip_prefix("W/")
        .unwrap_or(text)
        .strip_prefix("\"v")
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ApiError::bad_request("bad-if-match", "If-Match must be * or an ETag this API gave, such as \"v12\"")
        })?;
    // Well formed but beyond any version on record: stale, like any tag that is not current.
    digits.parse().map(Some).map_err(|_| {
        ApiError::new(StatusCode::PRECONDITION_FAILED, "stale-record", "If-Match is not a tag this API gave")
    })
}
