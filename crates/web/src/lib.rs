#![forbid(unsafe_code)]
//! Custodia's HTTP API: JSON under `/api/v1`, its OpenAPI document at `/api/openapi.json`,
//! Swagger UI at `/api/docs`, health at `/healthz` and `/readyz`; the staff web interface at `/`.
//! The only crate that knows HTTP.
//! Handlers call the synchronous service through `spawn_blocking`.

pub mod access;
mod document;
mod housing;
mod identity;
mod incident;
mod legal;
pub mod problem;
mod request;
mod routes;
mod sentence;
mod ui;

use std::sync::Arc;

use axum::http::{HeaderName, Request};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use service::staff::{NewRead, Staff};
use service::{Service, ServiceResult};
use store::Database;

use problem::{ApiError, ApiResult};

/// The largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A read to log, and where to say once it is durable.
type PendingRead = (NewRead, tokio::sync::oneshot::Sender<Result<(), String>>);

/// What every handler shares: the service over the database, and the read log's writer.
#[derive(Clone)]
pub struct AppState {
    service: Arc<Service<Database>>,
    reads: std::sync::mpsc::Sender<PendingRead>,
    tokens: Arc<std::sync::Mutex<std::collections::HashMap<String, CheckedToken>>>,
    /// Password checks (Argon2id, about 19 MiB and tens of milliseconds each) allowed at once.
    pub(crate) logins: Arc<tokio::sync::Semaphore>,
    /// The estate's open alerts as last computed, for the web pages (see [`AppState::recent_alerts`]).
    alerts: Arc<std::sync::RwLock<Option<AlertSnapshot>>>,
    /// Held while the alerts are recomputed: one computation at a time.
    alerts_computing: Arc<tokio::sync::Mutex<()>>,
}

/// A checked token: its staff member, when it was checked, and the service's credentials
/// generation read before the check.
type CheckedToken = (Staff, std::time::Instant, u64);

/// Every open alert of the estate at one instant.
pub(crate) type AlertSnapshot = (domain::time::Instant, Arc<Vec<service::legal::Alert>>);

/// How often `serve` recomputes the alerts the web pages show.
pub const ALERTS_REFRESH_SECONDS: u64 = 20;

/// How long a checked bearer token is trusted without asking the database again: a token revoked
/// by another process (`custodia token revoke`), or expired, stops working within this time. A
/// revocation or account change made through this process empties the cache at once (see
/// [`service::Service::credentials_generation`]).
pub const TOKEN_CACHE_SECONDS: u64 = 5;

impl AppState {
    /// State over an opened service; starts the thread that writes the read log.
    pub fn new(service: Service<Database>) -> Self {
        let service = Arc::new(service);
        let (reads, pending) = std::sync::mpsc::channel::<PendingRead>();
        let writer = service.clone();
        // Group commit: every read waits for the commit that holds it, and concurrent reads share
        // one commit, so logging every read (Mandela Rule 9) does not cap the read rate at the
        // disk's commit rate.
        std::thread::spawn(move || {
            while let Ok(first) = pending.recv() {
                let mut batch = vec![first];
                while batch.len() < 4096 {
                    match pending.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                let entries: Vec<NewRead> = batch.iter().map(|(read, _)| read.clone()).collect();
                let outcome = writer.log_reads(&entries).map_err(|e| e.to_string());
                for (_, done) in batch {
                    let _ = done.send(outcome.clone());
                }
            }
        });
        Self {
            service,
            reads,
            tokens: Default::default(),
            logins: Arc::new(tokio::sync::Semaphore::new(4)),
            alerts: Default::default(),
            alerts_computing: Default::default(),
        }
    }

    /// The service the handlers call.
    pub fn service(&self) -> Arc<Service<Database>> {
        self.service.clone()
    }

    /// The staff member of a token checked less than [`TOKEN_CACHE_SECONDS`] ago, and since
    /// which no token was revoked nor account changed through this process.
    pub(crate) fn cached_token(&self, token: &str) -> Option<Staff> {
        let tokens = self.tokens.lock().ok()?;
        let (staff, checked, generation) = tokens.get(token)?;
        (checked.elapsed().as_secs() < TOKEN_CACHE_SECONDS && *generation == self.service.credentials_generation())
            .then(|| staff.clone())
    }

    /// Remember a checked token, with the credentials generation read before the check (the
    /// cache is emptied when it grows large).
    pub(crate) fn cache_token(&self, token: String, staff: Staff, generation: u64) {
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() > 10_000 {
                tokens.clear();
            }
            tokens.insert(token, (staff, std::time::Instant::now(), generation));
        }
    }

    /// The estate's open alerts, computed at most a few refresh periods ago. Computing them reads
    /// everyone held (a fifth of a second for 120,000 people), so pages read this copy, which
    /// `serve` refreshes in the background; the API's `/alerts` always computes afresh.
    pub(crate) async fn recent_alerts(&self) -> ApiResult<AlertSnapshot> {
        let max_age = chrono::Duration::seconds(3 * ALERTS_REFRESH_SECONDS as i64);
        if let Some(snapshot) = self.alerts.read().ok().and_then(|a| a.clone()) {
            if chrono::Utc::now() - snapshot.0 < max_age {
                return Ok(snapshot);
            }
        }
        self.refresh_alerts().await
    }

    /// Compute the estate's open alerts now and keep them for the pages. Callers arriving while
    /// a computation runs wait for it and take its result rather than start another.
    pub(crate) async fn refresh_alerts(&self) -> ApiResult<AlertSnapshot> {
        let asked = chrono::Utc::now();
        let _computing = self.alerts_computing.lock().await;
        if let Some(snapshot) = self.alerts.read().ok().and_then(|a| a.clone()) {
            if snapshot.0 >= asked {
                return Ok(snapshot);
            }
        }
        let at = chrono::Utc::now();
        let alerts = Arc::new(self.run(move |s| s.alerts(at, |_| true)).await?);
        if let Ok(mut kept) = self.alerts.write() {
            *kept = Some((at, alerts.clone()));
        }
        Ok((at, alerts))
    }

    /// Log a read of a person's record; returns once it is durable.
    pub async fn log_read(&self, read: NewRead) -> ApiResult<()> {
        let (done, durable) = tokio::sync::oneshot::channel();
        self.reads.send((read, done)).map_err(ApiError::internal)?;
        durable.await.map_err(ApiError::internal)?.map_err(ApiError::internal)
    }

    /// Log reads of several people's records (a list or search that shows their names); returns
    /// once all are durable. They are queued together, so they share one commit.
    pub async fn log_reads(&self, reads: Vec<NewRead>) -> ApiResult<()> {
        let mut waiting = Vec::with_capacity(reads.len());
        for read in reads {
            let (done, durable) = tokio::sync::oneshot::channel();
            self.reads.send((read, done)).map_err(ApiError::internal)?;
            waiting.push(durable);
        }
        for durable in waiting {
            durable.await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
        }
        Ok(())
    }

    /// Run a service call on the blocking pool (the service and SQLite are synchronous).
    pub async fn run<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Service<Database>) -> ServiceResult<T> + Send + 'static,
    {
        let service = self.service.clone();
        match tokio::task::spawn_blocking(move || work(&service)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Custodia API",
        description = "Records, capacity and safeguards for prisons. Authenticate with `Authorization: Bearer TOKEN` \
                       (from `custodia token create`) or the session cookie set by `POST /api/v1/session`. \
                       Errors are RFC 9457 problem details.",
        license(name = "AGPL-3.0-or-later")
    ),
    components(schemas(problem::Problem)),
    tags(
        (name = "session", description = "Login, logout, password"),
        (name = "estate", description = "Facilities, cells, capacity and occupancy"),
        (name = "people", description = "People in custody, their records and movements"),
        (name = "oversight", description = "Audit chain and the register of who read which record"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

/// The whole application: the API with its access rules, the OpenAPI document, Swagger UI and
/// the staff web interface.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = routes::router().split_for_parts();
    let openapi = document::finish(openapi);
    let x_request_id = HeaderName::from_static("x-request-id");
    router
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::authorise))
        .layer(axum::middleware::map_response(problem::finish))
        .merge(ui::router(state.clone()).layer(axum::middleware::map_response(ui::finish)))
        .fallback(|uri: axum::http::Uri| async move { ApiError::not_found("route", uri.path()) })
        .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// The login throttle's key for the client a request came from: its TCP peer address (behind a
/// reverse proxy, the proxy's), or None when the server was not started by [`serve`].
pub(crate) fn client_of(extensions: &axum::http::Extensions) -> Option<String> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| service::staff::client_key(info.0.ip()))
}

/// The OpenAPI document, as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    document::finish(routes::router().split_for_parts().1)
}

/// Serve until `shutdown` completes, then finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresher = tokio::spawn(refresh_alerts(state.clone()));
    // The peer address is kept for the login throttle (`client_key`).
    let app = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    refresher.abort();
    served
}

/// Keep the pages' copy of the alerts fresh.
async fn refresh_alerts(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(ALERTS_REFRESH_SECONDS));
    loop {
        every.tick().await;
        if let Err(e) = state.refresh_alerts().await {
            tracing::warn!(status = %e.status(), "alerts for the web pages were not refreshed");
        }
    }
}

fn api_doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
