//! Who may call what. Every route the router serves has exactly one rule here; a test fails the
//! build if one is missing. Facility scope (404 outside it) is checked by the handlers, which
//! know which facility a record belongs to.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use service::staff::{Role, Staff};

use crate::problem::ApiError;
use crate::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not (health, login, the API description).
    Public,
    /// Any logged-in staff member.
    Staff,
    /// Only these roles.
    Roles(&'static [Role]),
}

use Role::*;

pub(crate) const EVERYONE: &[Role] = &[Admin, Director, Records, Officer, Medical, Monitor, Analyst];
/// Roles that read personal records (the analyst sees aggregates only).
pub(crate) const PERSONAL: &[Role] = &[Admin, Director, Records, Officer, Medical, Monitor];
/// Roles that record movements; which kinds each may record is checked per kind.
pub(crate) const MOVERS: &[Role] = &[Admin, Director, Records, Officer];
pub(crate) const ADMITTERS: &[Role] = &[Admin, Director, Records];
pub(crate) const OVERSIGHT: &[Role] = &[Admin, Monitor];
/// Estate, housing rules and overrides: a director's decisions.
pub(crate) const ESTATE: &[Role] = &[Admin, Director];
/// Roll counts and allocation (placements) are officers' work.
pub(crate) const COUNTERS: &[Role] = &[Admin, Director, Officer];
/// Placements and moves inside a facility (records staff record movements across its gate).
pub(crate) const PLACERS: &[Role] = COUNTERS;
/// Roles that report incidents.
pub(crate) const REPORTERS: &[Role] = &[Admin, Director, Records, Officer, Medical];
/// Roles that follow notification obligations.
pub(crate) const OBLIGATION_READERS: &[Role] = &[Admin, Director, Monitor];

/// (method, path as the router and the OpenAPI document write it, access).
pub const RULES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Public),
    ("GET", "/readyz", Access::Public),
    ("POST", "/api/v1/session", Access::Public),
    ("DELETE", "/api/v1/session", Access::Staff),
    ("GET", "/api/v1/session", Access::Staff),
    ("POST", "/api/v1/session/password", Access::Staff),
    ("GET", "/api/v1/facilities", Access::Roles(EVERYONE)),
    ("POST", "/api/v1/facilities", Access::Roles(&[Admin])),
    ("GET", "/api/v1/facilities/{code}", Access::Roles(EVERYONE)),
    ("POST", "/api/v1/facilities/{code}/cells/{cell}/status", Access::Roles(ESTATE)),
    ("GET", "/api/v1/facilities/{code}/occupants", Access::Roles(PERSONAL)),
    ("GET", "/api/v1/occupancy", Access::Roles(EVERYONE)),
    ("GET", "/api/v1/population", Access::Roles(EVERYONE)),
    ("GET", "/api/v1/people", Access::Roles(PERSONAL)),
    ("GET", "/api/v1/people/{number}", Access::Roles(PERSONAL)),
    ("GET", "/api/v1/people/{number}/timeline", Access::Roles(PERSONAL)),
    ("GET", "/api/v1/people/{number}/whereabouts", Access::Roles(PERSONAL)),
    ("POST", "/api/v1/people/{number}/movements", Access::Roles(MOVERS)),
    ("POST", "/api/v1/admissions", Access::Roles(ADMITTERS)),
    ("GET", "/api/v1/audit/events", Access::Roles(OVERSIGHT)),
    ("GET", "/api/v1/audit/verification", Access::Roles(OVERSIGHT)),
    ("GET", "/api/v1/reads", Access::Roles(OVERSIGHT)),
    // Incidents and obligations
    ("POST", "/api/v1/incidents", Access::Roles(REPORTERS)),
    ("GET", "/api/v1/incidents", Access::Roles(PERSONAL)),
    ("GET", "/api/v1/incidents/{number}", Access::Roles(PERSONAL)),
    ("POST", "/api/v1/incidents/{number}/injuries", Access::Roles(&[Medical])),
    ("GET", "/api/v1/obligations", Access::Roles(OBLIGATION_READERS)),
    ("POST", "/api/v1/obligations/{id}/closure", Access::Roles(&[Admin, Director])),
    ("POST", "/api/v1/people/{number}/notification-preference", Access::Roles(ADMITTERS)),
    ("GET", "/api/v1/statistics/incidents", Access::Roles(EVERYONE)),
    // Housing, allocation and roll counts
    ("GET", "/api/v1/facilities/{code}/housing-policy", Access::Roles(EVERYONE)),
    ("POST", "/api/v1/facilities/{code}/housing-policy", Access::Roles(ESTATE)),
    ("POST", "/api/v1/facilities/{code}/overrides", Access::Roles(ESTATE)),
    ("GET", "/api/v1/overrides", Access::Roles(EVERYONE)),
    ("POST", "/api/v1/facilities/{code}/units/{unit}/designation", Access::Roles(ESTATE)),
    ("POST", "/api/v1/people/{number}/classification", Access::Roles(ADMITTERS)),
    ("GET", "/api/v1/people/{number}/housing", Access::Roles(PERSONAL)),
    ("POST", "/api/v1/people/{number}/affiliations", Access::Roles(ADMITTERS)),
    ("GET", "/api/v1/groups", Access::Roles(EVERYONE)),
    ("POST", "/api/v1/groups", Access::Roles(ESTATE)),
    ("GET", "/api/v1/keep-apart", Access::Roles(PERSONAL)),
    ("POST", "/api/v1/keep-apart", Access::Roles(ESTATE)),
    ("POST", "/api/v1/keep-apart/{id}/end", Access::Roles(ESTATE)),
    ("POST", "/api/v1/facilities/{code}/allocation", Access::Roles(COUNTERS)),
    ("GET", "/api/v1/counts", Access::Roles(PERSONAL)),
    ("POST", "/api/v1/counts", Access::Roles(COUNTERS)),
    ("GET", "/api/v1/counts/{id}", Access::Roles(PERSONAL)),
    ("POST", "/api/v1/counts/{id}/entries", Access::Roles(COUNTERS)),
    ("POST", "/api/v1/counts/{id}/resolutions", Access::Roles(COUNTERS)),
    ("POST", "/api/v1/counts/{id}/clearance", Access::Roles(COUNTERS)),
    ("GET", "/api/v1/counts/{id}/cells/{cell}/expected", Access::Roles(PERSONAL)),
    ("GET", "/api/v1/statistics/keep-apart", Access::Roles(EVERYONE)),
    // Legal safeguards
    ("GET", "/api/v1/rule-sets/{code}", Access::Roles(EVERYONE)),
    ("POST", "/api/v1/rule-sets", Access::Roles(&[Admin])),
    ("POST", "/api/v1/people/{number}/charges", Access::Roles(ADMITTERS)),
    ("POST", "/api/v1/people/{number}/court-records", Access::Roles(ADMITTERS)),
    ("GET", "/api/v1/people/{number}/legal", Access::Roles(PERSONAL)),
    ("POST", "/api/v1/people/{number}/sentences", Access::Roles(ADMITTERS)),
    ("POST", "/api/v1/people/{number}/holds", Access::Roles(ADMITTERS)),
    ("GET", "/api/v1/holds", Access::Roles(PERSONAL)),
    ("POST", "/api/v1/holds/{id}/end", Access::Roles(ADMITTERS)),
    ("POST", "/api/v1/holds/{id}/overrides", Access::Roles(ADMITTERS)),
    ("POST", "/api/v1/hold-overrides/{id}/approval", Access::Roles(ESTATE)),
    ("GET", "/api/v1/alerts", Access::Roles(PERSONAL)),
    ("GET", "/api/v1/family-notices", Access::Roles(PERSONAL)),
    ("POST", "/api/v1/family-notices/{movement}", Access::Roles(ADMITTERS)),
    ("POST", "/api/v1/people/{number}/legal-visits", Access::Roles(MOVERS)),
    // Sentences
    ("POST", "/api/v1/sentences/calculation", Access::Roles(&[Admin, Director, Records, Monitor])),
    // Identity resolution
    ("POST", "/api/v1/identity/candidates", Access::Roles(ADMITTERS)),
    ("POST", "/api/v1/people/{number}/merge", Access::Roles(ADMITTERS)),
    ("POST", "/api/v1/people/{number}/unmerge", Access::Roles(ADMITTERS)),
    ("GET", "/api/v1/people/{number}/lineage", Access::Roles(PERSONAL)),
];

/// The rule of a route, if it has one.
pub fn rule_for(method: &Method, path: &str) -> Option<Access> {
    RULES.iter().find(|(m, p, _)| *m == method.as_str() && *p == path).map(|(_, _, access)| *access)
}

/// The staff member making a request, and their browser session if they use one.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub staff: Staff,
    /// The session secret, for logout.
    pub session: Option<String>,
}

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "custodia_session";

fn bearer(request: &Request) -> Option<&str> {
    request.headers().get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// The value of a cookie the request carries.
pub(crate) fn cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// Whether a `Content-Type` says JSON (`application/json`, with parameters such as a charset).
fn is_json(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether an `Origin` names this server (the `Host` asked for, or the host a proxy in front was asked for).
fn same_origin(request: &Request, origin: &str) -> bool {
    let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    let asked = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
    !authority.is_empty()
        && [asked("x-forwarded-host"), asked(header::HOST.as_str())]
            .into_iter()
            .flatten()
            .any(|host| host.eq_ignore_ascii_case(authority))
}

/// A write to the JSON API must be JSON (415 otherwise), and one a browser sends with the session
/// cookie must come from this site (403 otherwise). A page on another site can send a form or
/// `text/plain` body with the user's cookie without asking first; it cannot send JSON or forge
/// `Origin`. Bearer tokens are never sent by a browser on its own, so they are not asked.
fn guard_write(request: &Request) -> Result<(), ApiError> {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let headers = request.headers();
    match headers.get(header::CONTENT_TYPE) {
        Some(kind) if !is_json(kind.to_str().unwrap_or("")) => {
            return Err(unsupported(kind.to_str().unwrap_or("(not text)")));
        }
        Some(_) => {}
        // No type is accepted only for an empty body (a command such as clearing a count takes none).
        None => {
            let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if headers.contains_key(header::TRANSFER_ENCODING) || length.unwrap_or(0) > 0 {
                return Err(unsupported("(none)"));
            }
        }
    }
    if bearer(request).is_some() {
        return Ok(());
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = site.filter(|s| !matches!(*s, "same-origin" | "none")) {
        return Err(ApiError::forbidden(format!(
            "a {site} request may not write with the session cookie: send it from this site or with a bearer token"
        )));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        if !same_origin(request, origin) {
            return Err(ApiError::forbidden(format!(
                "a request from {origin} may not write with the session cookie: send it from this site or with a bearer token"
            )));
        }
    }
    Ok(())
}

fn unsupported(kind: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        format!("Content-Type {kind} is not accepted: send the body as application/json"),
    )
}

/// Middleware: find the route's rule, identify the caller, and refuse what the rule forbids.
pub async fn authorise(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let path = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let Some(path) = path else { return Ok(next.run(request).await) };
    // HEAD follows GET's rule; a method the route does not serve is 405 (axum answers it after us).
    let method = if request.method() == Method::HEAD { Method::GET } else { request.method().clone() };
    let Some(access) = rule_for(&method, &path) else {
        // RFC 9110: a 405 lists the methods the resource does serve.
        let served: Vec<&str> = RULES.iter().filter(|(_, p, _)| *p == path).map(|(m, _, _)| *m).collect();
        let mut response = ApiError::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!("{} is not served at {path}: use {}", request.method(), served.join(" or ")),
        )
        .into_response();
        if let Ok(allow) = served.join(", ").parse() {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return Ok(response);
    };
    guard_write(&request)?;
    if access == Access::Public {
        return Ok(next.run(request).await);
    }
    let now = chrono::Utc::now();
    let caller = if let Some(token) = bearer(&request).map(str::to_string) {
        let staff = match state.cached_token(&token) {
            Some(staff) => Some(staff),
            None => {
                // Read before the check: a revocation committed during it makes the entry stale.
                let generation = state.service().credentials_generation();
                let found = {
                    let token = token.clone();
                    state.run(move |s| s.staff_for_token(&token, now)).await?
                };
                if let Some(staff) = &found {
                    state.cache_token(token, staff.clone(), generation);
                }
                found
            }
        };
        staff.map(|staff| Caller { staff, session: None })
    } else if let Some(secret) = cookie(&request, SESSION_COOKIE).map(str::to_string) {
        let found = {
            let secret = secret.clone();
            state.run(move |s| s.staff_for_session(&secret, now)).await?
        };
        found.map(|staff| Caller { staff, session: Some(secret) })
    } else {
        None
    };
    let caller = caller.ok_or_else(ApiError::unauthenticated)?;
    if let Access::Roles(roles) = access {
        if !roles.contains(&caller.staff.role) {
            return Err(ApiError::forbidden(format!(
                "the {} role may not call this route",
                caller.staff.role.as_str()
            )));
        }
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// Roles that may record each kind of movement: floor officers move people inside the facility,
/// records officers handle what changes custody itself.
pub(crate) fn may_record(role: Role, kind: &service::custody::MovementKind) -> bool {
    let inside = matches!(
        kind,
        service::custody::MovementKind::Place { .. }
            | service::custody::MovementKind::Move { .. }
            | service::custody::MovementKind::Out { .. }
            | service::custody::MovementKind::Return
    );
    match role {
        Role::Admin | Role::Director => true,
        Role::Officer => inside,
        Role::Records => !inside,
        _ => false,
    }
}
