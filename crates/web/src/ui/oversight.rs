//! Alerts for everyone who reads records, and the audit page for monitors: the events, the
//! chain's status, and who read a person's record.

use askama::Template;
use axum::extract::{Extension, Query, State};
use serde::Deserialize;

use service::legal::Alert;
use store::staff::ReadRecord;
use store::{AuditEvent, AuditVerification};

use super::estate::{kinds_shown, visible_alerts, ALERT_KINDS};
use super::{csv, page, when_exact, Chrome, Ui, UiResult};
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

pub(crate) async fn audit(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<AuditQuery>,
) -> UiResult {
    // Person numbers are upper case; a number typed in lower case means the same person.
    let person = q.person.clone().unwrap_or_default().trim().to_uppercase();
    let reads_after = q.reads_after.unwrap_or(0);
    let csv_wanted = q.format.as_deref() == Some("csv");
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
    if csv_wanted {
        if let Some(reads) = &reads {
            let rows =
                reads.iter().map(|r| vec![r.at.to_rfc3339(), r.reader.clone(), r.person.clone(), r.route.clone()]);
            return Ok(csv("reads", &["at", "reader", "person", "route"], rows));
        }
        let rows = events.iter().map(|e| {
            vec![
                e.seq.to_string(),
                e.at.to_rfc3339(),
                e.actor.clone(),
                e.action.clone(),
                e.subject.clone(),
                e.hash.clone(),
            ]
        });
        return Ok(csv("audit", &["seq", "at", "actor", "action", "subject", "hash"], rows));
    }
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
