//! Alerts for everyone who reads records, and the audit page for monitors: the events, the
//! chain's status, and who read a person's record.

use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use serde::Deserialize;

use service::legal::Alert;
use store::staff::ReadRecord;
use store::{AuditEvent, AuditVerification};

use super::estate::{kinds_shown, visible_alerts, ALERT_KINDS};
use super::{csv, csv_stream, page, when_exact, Chrome, Ui, UiResult};
use crate::problem::ApiError;
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct AlertsQuery {
    kind: Option<String>,
    /// Recompute now rather than show the copy made at most a minute ago.
    fresh: Option<String>,
    format: Option<String>,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    at: String,
    kind: String,
    kinds: Vec<(&'static str, &'static str, usize)>,
    alerts: Vec<Alert>,
    /// Open alerts of every kind.
    open: usize,
    /// Of the kind shown.
    total: usize,
}

/// Most alerts one page lists; the counts and the CSV have them all.
const ALERTS_SHOWN: usize = 500;

pub(crate) async fn alerts(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<AlertsQuery>,
) -> UiResult {
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        None => None,
        Some(text) => Some(ALERT_KINDS.iter().map(|(k, _)| *k).find(|k| k.as_str() == text).ok_or_else(|| {
            ApiError::validation(vec![domain::FieldError::new("kind", format!("`{text}` is not a kind of alert"))])
        })?),
    };
    let (at, all) = if q.fresh.is_some() { state.refresh_alerts().await? } else { state.recent_alerts().await? };
    let mine = visible_alerts(&ui, &all);
    let kinds =
        kinds_shown(&ui).map(|(k, label)| (k.as_str(), *label, mine.iter().filter(|a| a.kind == *k).count())).collect();
    let open = mine.len();
    let chosen: Vec<&Alert> = mine.into_iter().filter(|a| kind.is_none_or(|k| a.kind == k)).collect();
    if q.format.as_deref() == Some("csv") {
        let rows = chosen.iter().map(|a| {
            vec![
                a.kind.as_str().to_string(),
                a.person.clone(),
                a.facility.clone(),
                a.date.to_string(),
                a.detail.clone(),
            ]
        });
        return Ok(csv("alerts", &["kind", "person", "facility", "date", "detail"], rows));
    }
    page(AlertsPage {
        chrome: ui.chrome("/alerts"),
        at: when_exact(at),
        kind: kind.map(|k| k.as_str()).unwrap_or("").to_string(),
        kinds,
        total: chosen.len(),
        alerts: chosen.into_iter().take(ALERTS_SHOWN).cloned().collect(),
        open,
    })
}

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    /// Show events after this number; the newest page when absent.
    after: Option<i64>,
    /// Verify the whole chain (takes seconds on a national database).
    verify: Option<String>,
    /// Whose reads to list.
    person: Option<String>,
    /// Reads after this one (the previous page's last).
    reads_after: Option<i64>,
    /// With `format=csv`: the first and last event of the range to download (the whole chain when absent).
    from: Option<i64>,
    to: Option<i64>,
    format: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    events: Vec<AuditEvent>,
    last: i64,
    after: i64,
    verification: Option<AuditVerification>,
    person: String,
    reads: Option<Vec<ReadRecord>>,
    /// The reads shown come after this one.
    reads_after: i64,
    /// The last read shown, when there are more.
    more_reads: Option<i64>,
}

/// Audit events shown per page.
const EVENTS_SHOWN: u32 = 100;
/// Reads of a person shown per page, oldest first.
const READS_SHOWN: u32 = 500;
/// Rows read from the database at a time for a streamed CSV download.
const CSV_PAGE: u32 = 2_000;

/// The audit events `from`..=`to` (the whole chain by default), or every read of a person from
/// `reads_after` on, as CSV streamed page by page.
fn audit_csv(state: &AppState, person: String, q: &AuditQuery) -> Response {
    let state = state.clone();
    if !person.is_empty() {
        let name = format!("reads-{person}");
        return csv_stream(&name, &["at", "reader", "person", "route"], q.reads_after.unwrap_or(0), move |after| {
            let (state, person) = (state.clone(), person.clone());
            async move {
                let reads = state.run(move |s| s.reads(Some(&person), None, after, CSV_PAGE)).await?;
                let last = reads.last().map(|r| r.id);
                let rows = reads.into_iter().map(|r| vec![r.at.to_rfc3339(), r.reader, r.person, r.route]).collect();
                Ok(last.map(|last| (rows, last)))
            }
        });
    }
    let (from, to) = (q.from.unwrap_or(1).max(1), q.to.unwrap_or(i64::MAX));
    let name = match (q.from, q.to) {
        (None, None) => "audit".to_string(),
        _ => format!("audit-{from}-{}", q.to.map(|t| t.to_string()).unwrap_or_else(|| "end".into())),
    };
    csv_stream(&name, &["seq", "at", "actor", "action", "subject", "hash"], from - 1, move |after| {
        let state = state.clone();
        async move {
            if after >= to {
                return Ok(None);
            }
            let events = state.run(move |s| s.audit_events(after, CSV_PAGE)).await?;
            let events: Vec<AuditEvent> = events.into_iter().take_while(|e| e.seq <= to).collect();
            let last = events.last().map(|e| e.seq);
            let rows = events
                .into_iter()
                .map(|e| vec![e.seq.to_string(), e.at.to_rfc3339(), e.actor, e.action, e.subject, e.hash])
                .collect();
            Ok(last.map(|last| (rows, last)))
        }
    })
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<AuditQuery>,
) -> UiResult {
    // Person numbers are upper case; a number typed in lower case means the same person.
    let person = q.person.clone().unwrap_or_default().trim().to_uppercase();
    let reads_after = q.reads_after.unwrap_or(0);
    if q.format.as_deref() == Some("csv") {
        return Ok(audit_csv(&state, person, &q));
    }
    let (last, events, reads) = {
        let person = person.clone();
        state
            .run(move |s| {
                let last = s.last_audit_seq()?;
                let after = q.after.unwrap_or(last - i64::from(EVENTS_SHOWN)).clamp(0, last);
                let events = s.audit_events(after, EVENTS_SHOWN)?;
                let reads = if person.is_empty() {
                    None
                } else {
                    Some(s.reads(Some(&person), None, reads_after, READS_SHOWN)?)
                };
                Ok((last, events, reads))
            })
            .await?
    };
    let verification =
        if q.verify.is_some() { Some(state.run(|s| s.verify_audit(&mut |_, _| {})).await?) } else { None };
    let after = events.first().map(|e| e.seq - 1).unwrap_or(last);
    let more_reads = reads.as_ref().filter(|r| r.len() == READS_SHOWN as usize).and_then(|r| r.last()).map(|r| r.id);
    page(AuditPage {
        chrome: ui.chrome("/audit"),
        events,
        last,
        after,
        verification,
        person,
        reads,
        reads_after,
        more_reads,
    })
}
