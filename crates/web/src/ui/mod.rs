//! The staff web interface: server-rendered HTML (askama) at `/`, with htmx served by the binary
//! for the live parts. It calls the same service, with the same sessions, roles and facility
//! scope, as the API. Every form works without JavaScript.

mod count;
mod estate;
mod incident;
mod intake;
mod movement;
mod oversight;
mod person;
mod place;

use askama::Template;
use axum::body::Body;
use axum::extract::{Form, MatchedPath, Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono_tz::Tz;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use service::staff::{Role, Staff};

use crate::access::{self, cookie, Caller, SESSION_COOKIE};
use crate::problem::ApiError;
use crate::AppState;

/// Who may open each page or send each form: (method, path as the router writes it, roles).
/// A route without a line here is refused, and the menu shows only what the role may open.
pub const UI_RULES: &[(&str, &str, &[Role])] = &[
    ("GET", "/", access::EVERYONE),
    ("GET", "/estate", access::EVERYONE),
    ("GET", "/search", access::PERSONAL),
    ("GET", "/people/{number}", access::PERSONAL),
    ("GET", "/intake", access::ADMITTERS),
    ("POST", "/intake", access::ADMITTERS),
    ("POST", "/intake/candidates", access::ADMITTERS),
    ("GET", "/intake/admitted/{number}", access::ADMITTERS),
    ("GET", "/people/{number}/placement", access::PLACERS),
    ("POST", "/people/{number}/placement", access::PLACERS),
    ("POST", "/overrides", access::ESTATE),
    ("GET", "/people/{number}/movement", access::MOVERS),
    ("POST", "/people/{number}/movement", access::MOVERS),
    ("POST", "/people/{number}/holds/{id}/overrides", access::ADMITTERS),
    ("POST", "/people/{number}/hold-overrides/{id}/approval", access::ESTATE),
    ("GET", "/counts", access::PERSONAL),
    ("POST", "/counts", access::COUNTERS),
    ("GET", "/counts/{id}", access::PERSONAL),
    ("POST", "/counts/{id}/entries", access::COUNTERS),
    ("POST", "/counts/{id}/resolutions", access::COUNTERS),
    ("POST", "/counts/{id}/clearance", access::COUNTERS),
    ("GET", "/incidents", access::PERSONAL),
    ("POST", "/incidents", access::REPORTERS),
    ("GET", "/incidents/{number}", access::PERSONAL),
    ("GET", "/obligations", access::OBLIGATION_READERS),
    ("POST", "/obligations/{id}/closure", access::ESTATE),
    ("GET", "/alerts", access::PERSONAL),
    ("GET", "/audit", access::OVERSIGHT),
    ("POST", "/logout", access::EVERYONE),
];

/// The menu: (path, label).
const MENU: &[(&str, &str)] = &[
    ("/", "Dashboard"),
    ("/estate", "Estate"),
    ("/search", "Search"),
    ("/intake", "Intake"),
    ("/counts", "Roll counts"),
    ("/incidents", "Incidents"),
    ("/obligations", "Obligations"),
    ("/alerts", "Alerts"),
    ("/audit", "Audit"),
];

fn allowed(method: &str, path: &str, role: Role) -> Option<bool> {
    UI_RULES.iter().find(|(m, p, _)| *m == method && *p == path).map(|(_, _, roles)| roles.contains(&role))
}

/// The web interface's routes.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(estate::dashboard))
        .route("/estate", get(estate::estate))
        .route("/search", get(person::search))
        .route("/people/{number}", get(person::person))
        .route("/intake", get(intake::form).post(intake::admit))
        .route("/intake/candidates", post(intake::candidates))
        .route("/intake/admitted/{number}", get(intake::admitted))
        .route("/people/{number}/placement", get(place::form).post(place::record))
        .route("/overrides", post(place::capacity_override))
        .route("/people/{number}/movement", get(movement::form).post(movement::record))
        .route("/people/{number}/holds/{id}/overrides", post(movement::ask_override))
        .route("/people/{number}/hold-overrides/{id}/approval", post(movement::approve_override))
        .route("/counts", get(count::list).post(count::start))
        .route("/counts/{id}", get(count::show))
        .route("/counts/{id}/entries", post(count::enter))
        .route("/counts/{id}/resolutions", post(count::resolve))
        .route("/counts/{id}/clearance", post(count::clear))
        .route("/incidents", get(incident::list).post(incident::report))
        .route("/incidents/{number}", get(incident::show))
        .route("/obligations", get(incident::obligations))
        .route("/obligations/{id}/closure", post(incident::close_obligation))
        .route("/alerts", get(oversight::alerts))
        .route("/audit", get(oversight::audit))
        .route("/logout", post(logout))
        .layer(axum::middleware::from_fn_with_state(state, session))
        .route("/login", get(login_form).post(login))
        .route("/assets/htmx.min.js", get(htmx))
        .route("/assets/custodia.css", get(stylesheet))
}

// ---------------------------------------------------------------------------------------------
// Sessions, roles and CSRF
// ---------------------------------------------------------------------------------------------

/// The logged-in staff member of a page, and the token their forms must carry.
#[derive(Clone)]
pub(crate) struct Ui {
    pub caller: Caller,
    pub csrf: String,
}

impl Ui {
    pub fn staff(&self) -> &Staff {
        &self.caller.staff
    }

    pub fn role(&self) -> Role {
        self.caller.staff.role
    }

    /// Whether the role may use a route (for showing or hiding buttons).
    pub fn may(&self, method: &str, path: &str) -> bool {
        allowed(method, path, self.role()).unwrap_or(false)
    }

    /// The frame every page shares: who is logged in, the menu, the form token.
    pub fn chrome(&self, current: &str) -> Chrome {
        Chrome {
            staff: self.caller.staff.name.clone(),
            role: self.role().as_str(),
            scope: if self.role().national() {
                "all facilities".to_string()
            } else {
                self.caller.staff.facilities.join(", ")
            },
            csrf: self.csrf.clone(),
            menu: MENU
                .iter()
                .filter(|(path, _)| self.may("GET", path))
                .map(|(path, label)| MenuItem { path, label, current: *path == current })
                .collect(),
        }
    }
}

/// The shared frame of a page.
pub(crate) struct Chrome {
    pub staff: String,
    pub role: &'static str,
    pub scope: String,
    pub csrf: String,
    pub menu: Vec<MenuItem>,
}

pub(crate) struct MenuItem {
    pub path: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The form token of a session: derived from its secret, so only a page the session loaded knows it.
fn csrf_of(secret: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"custodia-csrf\n");
    digest.update(secret.as_bytes());
    hex::encode(&digest.finalize()[..16])
}

/// The `csrf` field of a form body, or the `X-CSRF-Token` header htmx sends.
fn submitted_csrf(headers: &axum::http::HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(token) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return Some(token.to_string());
    }
    form_urlencoded_pairs(body).find(|(k, _)| k == "csrf").map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    /// A page that does what an API route does allows exactly the API route's roles.
    #[test]
    fn pages_allow_the_roles_of_the_api_routes_they_stand_for() {
        use crate::access::{rule_for, Access};
        use service::staff::Role;
        let pairs = [
            (("GET", "/search"), ("GET", "/api/v1/people")),
            (("GET", "/people/{number}"), ("GET", "/api/v1/people/{number}")),
            (("POST", "/intake"), ("POST", "/api/v1/admissions")),
            (("POST", "/intake/candidates"), ("POST", "/api/v1/identity/candidates")),
            (("POST", "/overrides"), ("POST", "/api/v1/facilities/{code}/overrides")),
            (("POST", "/people/{number}/movement"), ("POST", "/api/v1/people/{number}/movements")),
            (("POST", "/people/{number}/holds/{id}/overrides"), ("POST", "/api/v1/holds/{id}/overrides")),
            (
                ("POST", "/people/{number}/hold-overrides/{id}/approval"),
                ("POST", "/api/v1/hold-overrides/{id}/approval"),
            ),
            (("GET", "/counts"), ("GET", "/api/v1/counts")),
            (("POST", "/counts"), ("POST", "/api/v1/counts")),
            (("POST", "/counts/{id}/entries"), ("POST", "/api/v1/counts/{id}/entries")),
            (("POST", "/counts/{id}/resolutions"), ("POST", "/api/v1/counts/{id}/resolutions")),
            (("POST", "/counts/{id}/clearance"), ("POST", "/api/v1/counts/{id}/clearance")),
            (("GET", "/incidents"), ("GET", "/api/v1/incidents")),
            (("POST", "/incidents"), ("POST", "/api/v1/incidents")),
            (("GET", "/obligations"), ("GET", "/api/v1/obligations")),
            (("POST", "/obligations/{id}/closure"), ("POST", "/api/v1/obligations/{id}/closure")),
            (("GET", "/alerts"), ("GET", "/api/v1/alerts")),
            (("GET", "/audit"), ("GET", "/api/v1/audit/events")),
        ];
        for ((method, page), (api_method, route)) in pairs {
            let Some(Access::Roles(api)) = rule_for(&api_method.parse().unwrap(), route) else {
                panic!("{api_method} {route} has no role rule");
            };
            for role in Role::ALL {
                assert_eq!(
                    super::allowed(method, page, role),
                    Some(api.contains(&role)),
                    "{method} {page} and {api_method} {route} disagree on {}",
                    role.as_str()
                );
            }
        }
    }

    #[test]
    fn the_login_warns_where_a_browser_would_drop_the_cookie() {
        let with = |pairs: &[(&str, &str)]| {
            let mut headers = axum::http::HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
            }
            super::secure_origin(&headers)
        };
        assert!(with(&[("host", "localhost:8080")]));
        assert!(with(&[("host", "127.0.0.1:8080")]));
        assert!(with(&[("host", "[::1]:8080")]));
        assert!(with(&[("host", "custodia.prison.example"), ("x-forwarded-proto", "https")]));
        assert!(!with(&[("host", "10.0.0.5:8080")]));
        assert!(!with(&[("host", "custodia.prison.example")]));
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(super::grouped(0), "0");
        assert_eq!(super::grouped(999), "999");
        assert_eq!(super::grouped(40_000), "40,000");
        assert_eq!(super::grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn only_paths_on_this_site_follow_a_login() {
        let next = |n: &str| super::local_path(Some(n.to_string()));
        assert_eq!(next("/people/SV-1?x=1"), "/people/SV-1?x=1");
        for outside in ["//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example", "/ /x", ""] {
            assert_eq!(next(outside), "/", "{outside:?}");
        }
        assert_eq!(super::local_path(None), "/");
    }

    #[test]
    fn form_times_are_the_facility_clock() {
        let sv: chrono_tz::Tz = "America/El_Salvador".parse().unwrap();
        let at = super::form_instant("at", Some("2026-03-01T08:00"), sv).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-03-01T14:00:00+00:00");
        assert_eq!(super::form_value(at, sv), "2026-03-01T08:00");
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        // Clocks put forward: 02:30 never happened.
        assert!(super::form_instant("at", Some("2026-03-08T02:30"), ny).is_err());
        // Clocks put back: 01:30 happened twice; the first is taken.
        let twice = super::form_instant("at", Some("2026-11-01T01:30"), ny).unwrap();
        assert_eq!(twice.to_rfc3339(), "2026-11-01T05:30:00+00:00");
        assert!(super::form_instant("at", Some("yesterday"), sv).is_err());
    }
}

fn form_urlencoded_pairs(body: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default().into_iter()
}

/// Middleware: a page needs a live session (else the login page), a role the page allows (else
/// 403), and every form a token from this session (else 403). Expired sessions go to the login.
async fn session(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    let secret = cookie(&request, SESSION_COOKIE).map(str::to_string);
    let staff = match secret.clone() {
        None => None,
        Some(secret) => match state.run(move |s| s.staff_for_session(&secret, chrono::Utc::now())).await {
            Ok(staff) => staff,
            Err(e) => return UiError::from(e).into_response(),
        },
    };
    let (Some(staff), Some(secret)) = (staff, secret) else {
        let target = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let expired = if cookie(&request, SESSION_COOKIE).is_some() { "&expired=1" } else { "" };
        let to = format!("/login?next={}{expired}", urlencode(target));
        return if request.headers().contains_key("hx-request") {
            // htmx follows a redirect inside the page; ask it to load the login page instead.
            ([("hx-redirect", to)], StatusCode::UNAUTHORIZED).into_response()
        } else {
            Redirect::to(&to).into_response()
        };
    };
    let method = if request.method() == Method::HEAD { "GET" } else { request.method().as_str() };
    match allowed(method, &path, staff.role) {
        None => {
            return UiError::status(StatusCode::METHOD_NOT_ALLOWED, "this page does not take that request")
                .into_response()
        }
        Some(false) => {
            return UiError::status(
                StatusCode::FORBIDDEN,
                format!("the {} role may not use this page", staff.role.as_str()),
            )
            .into_response()
        }
        Some(true) => {}
    }
    let csrf = csrf_of(&secret);
    let ui = Ui { caller: Caller { staff, session: Some(secret) }, csrf: csrf.clone() };
    let request = if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await else {
            return UiError::status(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
        };
        if submitted_csrf(&parts.headers, &bytes).as_deref() != Some(csrf.as_str()) {
            return UiError::status(
                StatusCode::FORBIDDEN,
                "the form's security token is missing or stale: reload the page and send it again",
            )
            .into_response();
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        request
    };
    let mut request = request;
    request.extensions_mut().insert(ui);
    next.run(request).await
}

/// Every answer of the interface: a plain-text error (a form or address the extractors could not
/// read) becomes an error page; pages may not be framed and run only the scripts this server
/// sends (htmx), so a name that slipped through escaping still could not run.
pub(crate) async fn finish(response: Response) -> Response {
    let plain = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    let mut response = if plain && response.status().is_client_error() {
        let status = response.status();
        let text = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
        UiError::status(status, String::from_utf8_lossy(&text)).into_response()
    } else {
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(header::HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A page that failed: shown as an HTML page with the status and what went wrong.
pub(crate) struct UiError {
    status: StatusCode,
    detail: String,
}

impl UiError {
    pub fn status(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into() }
    }

    pub fn not_found(what: &str, key: &str) -> Self {
        Self::from(ApiError::not_found(what, key))
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self { status: e.status(), detail: e.problem().detail.clone() }
    }
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> Self {
        Self::from(ApiError::internal(e))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    detail: &'a str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            status: self.status.as_u16(),
            title: self.status.canonical_reason().unwrap_or("Error"),
            detail: &self.detail,
        };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, self.detail).into_response(),
        }
    }
}

pub(crate) type UiResult<T = Response> = Result<T, UiError>;

/// Render a page.
pub(crate) fn page(template: impl Template) -> UiResult {
    Ok(Html(template.render()?).into_response())
}

/// Render a page with a status other than 200 (a refused form).
pub(crate) fn page_status(status: StatusCode, template: impl Template) -> UiResult {
    let mut response = page(template)?;
    *response.status_mut() = status;
    Ok(response)
}

/// Run a command under the one-time key its form was rendered with: the same form sent twice (a
/// double click, a reload) gives the first answer instead of doing the work again. `request`
/// identifies what was asked; the answer is the command's result as JSON.
pub(crate) async fn once<T, F>(
    state: &AppState,
    ui: &Ui,
    key: &str,
    request: String,
    work: F,
) -> Result<serde_json::Value, ApiError>
where
    T: serde::Serialize + Send + 'static,
    F: FnMut(&mut store::SqlTx<'_>) -> service::ServiceResult<T> + Send + 'static,
{
    let key = key.to_string();
    let actor = ui.staff().name.clone();
    let hash = hex::encode(Sha256::digest(request.as_bytes()));
    let answer = state
        .run(move |s| {
            let key = (!key.is_empty()).then(|| service::staff::IdempotencyKey {
                actor: &actor,
                key: &key,
                request_sha256: &hash,
                at: chrono::Utc::now(),
            });
            s.run_idempotent(key, 200, work)
        })
        .await
        .map_err(|e| match e.problem().rule.as_deref() {
            Some("idempotency.key_reused") => ApiError::new(
                StatusCode::CONFLICT,
                "form-reused",
                "this form was already sent with other values: reload the page and fill it in again",
            ),
            _ => e,
        })?;
    serde_json::from_str(&answer.body).map_err(ApiError::internal)
}

/// Field problems of a refused form, by field name, and the refusal in words.
#[derive(Default)]
pub(crate) struct Refusal {
    pub detail: String,
    pub rule: Option<String>,
    pub fields: Vec<(String, String)>,
}

impl Refusal {
    pub fn of(e: &ApiError) -> Self {
        let p = e.problem();
        Self {
            detail: p.detail.clone(),
            rule: p.rule.clone(),
            fields: p.fields.iter().map(|f| (f.field.clone(), f.problem.clone())).collect(),
        }
    }

    /// What is wrong with one field, for showing beside it.
    pub fn on(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, p)| p.as_str())
    }

    /// Problems with fields the form does not show one by one.
    pub fn others(&self, shown: &[&str]) -> Vec<String> {
        self.fields.iter().filter(|(f, _)| !shown.contains(&f.as_str())).map(|(f, p)| format!("{f}: {p}")).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// CSV and shared formatting
// ---------------------------------------------------------------------------------------------

/// Lists offer `?format=csv`.
#[derive(Deserialize, Default)]
pub(crate) struct Format {
    pub format: Option<String>,
}

impl Format {
    pub fn csv(&self) -> bool {
        self.format.as_deref() == Some("csv")
    }
}

/// One CSV line. Cells that a spreadsheet would run as a formula are prefixed with `'`
/// ([`service::csv::cell`], shared with the command line).
fn csv_line(row: &[String]) -> String {
    let mut line = row.iter().map(|c| service::csv::cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn csv_headers(name: &str) -> [(header::HeaderName, String); 2] {
    [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
    ]
}

/// A CSV download.
pub(crate) fn csv(name: &str, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Response {
    let mut out = header.join(",");
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&csv_line(&row));
    }
    (csv_headers(name), out).into_response()
}

/// Rows of a streamed CSV read after a cursor, and the cursor of the last; `None` when done.
pub(crate) type CsvPage = Option<(Vec<Vec<String>>, i64)>;

/// A CSV download of any length, written page by page as it is read: a range of the whole audit
/// chain is sent complete without being held in memory. `next` reads the page after a cursor.
pub(crate) fn csv_stream<F, Fut>(name: &str, header: &[&str], first: i64, next: F) -> Response
where
    F: FnMut(i64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<CsvPage, ApiError>> + Send + 'static,
{
    use futures_util::StreamExt;
    let head = format!("{}\r\n", header.join(","));
    let head = futures_util::stream::once(async move { Ok::<_, std::io::Error>(axum::body::Bytes::from(head)) });
    let pages = futures_util::stream::unfold((Some(first), next), |(cursor, mut next)| async move {
        let cursor = cursor?;
        match next(cursor).await {
            Ok(None) => None,
            Ok(Some((rows, last))) => {
                let text: String = rows.iter().map(|row| csv_line(row)).collect();
                Some((Ok(axum::body::Bytes::from(text)), (Some(last), next)))
            }
            // The status has been sent: all that is left is to cut the download short, which the
            // browser reports as failed rather than saving a partial file as if whole.
            Err(e) => Some((Err(std::io::Error::other(e.problem().detail.clone())), (None, next))),
        }
    });
    (csv_headers(name), Body::from_stream(head.chain(pages))).into_response()
}

/// An instant as staff read it: `2026-06-01 14:05 UTC`. Pages show UTC (one clock for the whole
/// estate); forms take the facility's local time and say so.
pub(crate) fn when(at: domain::time::Instant) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An instant to the second: `2026-06-01 14:05:09 UTC`.
pub(crate) fn when_exact(at: domain::time::Instant) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A form value of a type with rules (`domain::text`); a problem is a field error beside it.
pub(crate) fn form_text<T: TryFrom<String, Error = String>>(field: &str, value: String) -> Result<T, ApiError> {
    // A form's spaces at either end are the browser's, not the officer's: trimmed, not refused.
    T::try_from(value.trim().to_string())
        .map_err(|problem| ApiError::validation(vec![domain::FieldError::new(field, problem)]))
}

/// An optional form value of a type with rules: left empty, it is absent.
pub(crate) fn form_optional<T: TryFrom<String, Error = String>>(
    field: &str,
    value: Option<String>,
) -> Result<Option<T>, ApiError> {
    value.filter(|v| !v.trim().is_empty()).map(|v| form_text(field, v)).transpose()
}

/// A `datetime-local` form value, read in the facility's time zone (what the officer's clock
/// showed), or now when empty. A time that does not exist there (clocks put forward) is refused;
/// one that happened twice (clocks put back) is the first.
pub(crate) fn form_instant(field: &str, text: Option<&str>, zone: Tz) -> Result<domain::time::Instant, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(chrono::Utc::now()) };
    let invalid = |problem: String| ApiError::validation(vec![domain::FieldError::new(field, problem)]);
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| invalid(format!("`{text}` is not a date and time (YYYY-MM-DDTHH:MM)")))?;
    match naive.and_local_timezone(zone) {
        chrono::LocalResult::Single(at) | chrono::LocalResult::Ambiguous(at, _) => Ok(at.with_timezone(&chrono::Utc)),
        chrono::LocalResult::None => {
            Err(invalid(format!("{text} does not exist in {zone}: the clocks were put forward")))
        }
    }
}

/// An instant as a `datetime-local` form value in a time zone.
pub(crate) fn form_value(at: domain::time::Instant, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string()
}

/// A facility's time zone (UTC for one not found or with a zone this build does not know).
pub(crate) async fn zone_of(state: &AppState, facility: &str) -> Result<Tz, ApiError> {
    let facilities = state.run(|s| s.facilities()).await?;
    Ok(facilities.iter().find(|f| f.code == facility).and_then(|f| f.time_zone.parse().ok()).unwrap_or(chrono_tz::UTC))
}

/// How full a place is, for colour: always shown with the number beside it.
pub(crate) fn level(pct: Option<f64>) -> &'static str {
    match pct {
        None => "none",
        Some(p) if p <= 85.0 => "ok",
        Some(p) if p <= 100.0 => "full",
        Some(p) if p <= 150.0 => "over",
        Some(_) => "severe",
    }
}

/// A count with thousands grouped: 40,000.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1} %")).unwrap_or_else(|| "–".to_string())
}

// ---------------------------------------------------------------------------------------------
// Login, logout, assets
// ---------------------------------------------------------------------------------------------

const LOGIN_CSRF_COOKIE: &str = "custodia_login_csrf";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    message: Option<String>,
    name: String,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

/// Only paths on this site may follow a login: visible ASCII, no backslash, no second slash
/// (browsers drop tabs and newlines from URLs, so `/\t/host` would become `//host`).
fn local_path(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'))
        .unwrap_or_else(|| "/".into())
}

pub(crate) fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn login_page(csrf: String, next: String, message: Option<String>, name: String, status: StatusCode) -> UiResult {
    let html = LoginPage { csrf: csrf.clone(), next, message, name }.render()?;
    let cookie = format!("{LOGIN_CSRF_COOKIE}={csrf}; HttpOnly; Secure; SameSite=Strict; Path=/login; Max-Age=3600");
    Ok((status, [(header::SET_COOKIE, cookie)], Html(html)).into_response())
}

async fn login_form(Query(q): Query<LoginQuery>, headers: axum::http::HeaderMap) -> UiResult {
    let message = if !secure_origin(&headers) {
        Some(
            "This address is plain HTTP: browsers keep the login cookie only over HTTPS or on localhost, \
             so logging in here will not last. Serve Custodia behind HTTPS."
                .to_string(),
        )
    } else {
        q.expired.map(|_| "Your session ended. Log in again.".to_string())
    };
    login_page(random_token(), local_path(q.next), message, String::new(), StatusCode::OK)
}

/// Whether a browser will keep a `Secure` cookie for this request: HTTPS (as a proxy in front
/// reports it) or a loopback host.
fn secure_origin(headers: &axum::http::HeaderMap) -> bool {
    let https = headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let name =
        host.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host, |(n, _)| n);
    https || matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.ends_with(".localhost")
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    name: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

async fn login(State(state): State<AppState>, request: Request) -> UiResult {
    let expected = cookie(&request, LOGIN_CSRF_COOKIE).map(str::to_string);
    let client = crate::client_of(request.extensions());
    let Form(form) = Form::<LoginForm>::from_request(request, &state)
        .await
        .map_err(|e| UiError::status(StatusCode::BAD_REQUEST, e.body_text()))?;
    let next = local_path(form.next);
    if expected.as_deref() != Some(form.csrf.as_str()) {
        let message = "The login form was stale. Try again.".to_string();
        return login_page(random_token(), next, Some(message), form.name, StatusCode::FORBIDDEN);
    }
    let now = chrono::Utc::now();
    let name = form.name.clone();
    let _permit = state.logins.acquire().await.map_err(ApiError::internal)?;
    match state.run(move |s| s.login_from(&form.name, &form.password, client.as_deref(), now)).await {
        Ok(session) => {
            let max_age = (session.expires_at - now).num_seconds().max(0);
            let cookie = format!(
                "{SESSION_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}",
                session.secret
            );
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
        }
        Err(e) if e.status() == StatusCode::UNAUTHORIZED || e.status() == StatusCode::TOO_MANY_REQUESTS => {
            let status = e.status();
            login_page(random_token(), next, Some(e.problem().detail.clone()), name, status)
        }
        Err(e) => Err(e.into()),
    }
}

async fn logout(State(state): State<AppState>, axum::Extension(ui): axum::Extension<Ui>) -> UiResult {
    if let Some(secret) = ui.caller.session {
        state.run(move |s| s.logout(&secret)).await?;
    }
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

async fn htmx() -> Response {
    asset("text/javascript", include_str!("../../assets/htmx-2.0.11.min.js"))
}

async fn stylesheet() -> Response {
    asset("text/css", include_str!("../../assets/custodia.css"))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=86400")], body).into_response()
}

use axum::extract::FromRequest;
