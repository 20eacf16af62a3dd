//! Roll counts: start one per unit, enter what was counted per cell, explain each difference,
//! and clear it only when everyone is accounted for.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use service::count::{CellCount, CountView, Explanation, Resolve, StartCount};

use super::{csv, page, page_status, Chrome, Format, Refusal, Ui, UiError, UiResult};
use crate::problem::ApiError;
use crate::AppState;

#[derive(Template)]
#[template(path = "counts.html")]
struct CountsPage {
    chrome: Chrome,
    counts: Vec<CountView>,
    facilities: Vec<String>,
    may_count: bool,
    refusal: Option<Refusal>,
}

fn scope(ui: &Ui) -> Option<Vec<String>> {
    (!ui.role().national()).then(|| ui.staff().facilities.clone())
}

async fn counts_page(state: &AppState, ui: &Ui, refusal: Option<Refusal>) -> UiResult<CountsPage> {
    let scope = scope(ui);
    let now = chrono::Utc::now();
    let (counts, facilities) =
        state.run(move |s| Ok((s.counts_of(scope.as_deref(), i64::MAX, 100, now)?, s.facilities()?))).await?;
    Ok(CountsPage {
        chrome: ui.chrome("/counts"),
        counts,
        facilities: facilities.into_iter().map(|f| f.code).filter(|c| ui.staff().sees(c)).collect(),
        may_count: ui.may("POST", "/counts"),
        refusal,
    })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(f): Query<Format>,
) -> UiResult {
    let page_data = counts_page(&state, &ui, None).await?;
    if f.csv() {
        let rows = page_data.counts.iter().map(|c| {
            vec![
                c.id.to_string(),
                c.facility.clone(),
                c.unit.clone().unwrap_or_default(),
                c.counted_at.to_rfc3339(),
                c.state.to_string(),
                c.expected.to_string(),
                c.counted.to_string(),
                c.started_by.clone(),
            ]
        });
        let header = ["id", "facility", "unit", "started_at", "state", "expected", "counted", "started_by"];
        return Ok(csv("counts", &header, rows));
    }
    page(page_data)
}

#[derive(Deserialize)]
pub(crate) struct StartForm {
    facility: String,
    unit: Option<String>,
}

pub(crate) async fn start(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Form(form): Form<StartForm>,
) -> UiResult {
    if !ui.staff().sees(&form.facility) {
        return Err(UiError::not_found("facility", &form.facility));
    }
    let request = StartCount { facility: form.facility, unit: form.unit.filter(|u| !u.trim().is_empty()) };
    let ctx = ui.staff().context(chrono::Utc::now());
    match state.run(move |s| s.start_count(&ctx, &request)).await {
        Ok(count) => Ok(Redirect::to(&format!("/counts/{}", count.id)).into_response()),
        Err(e) if e.status().is_client_error() => {
            page_status(e.status(), counts_page(&state, &ui, Some(Refusal::of(&e))).await?)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "count.html")]
struct CountPage {
    chrome: Chrome,
    count: CountView,
    may_count: bool,
    refusal: Option<Refusal>,
    discrepancies: usize,
    /// For each cell short of people: who was expected there (number, name).
    expected_in_short: Vec<(String, Vec<(String, String)>)>,
    /// What was typed per cell when the entries were refused, so that nothing typed is lost.
    typed: Vec<(String, String)>,
}

impl CountPage {
    /// What a cell's box shows: what was typed when the form came back refused, else the count on record.
    fn entry(&self, cell: &str, counted: &Option<u32>) -> String {
        match self.typed.iter().find(|(c, _)| c == cell) {
            Some((_, text)) => text.clone(),
            None => counted.map(|n| n.to_string()).unwrap_or_default(),
        }
    }

    /// What is wrong with what was typed for a cell.
    fn problem(&self, cell: &str) -> Option<&str> {
        self.refusal.as_ref()?.on(&format!("cell {cell}"))
    }
}

async fn count_page(state: &AppState, ui: &Ui, id: i64, refusal: Option<Refusal>) -> UiResult<CountPage> {
    let count = state.run(move |s| s.count(id, chrono::Utc::now())).await?;
    if !ui.staff().sees(&count.facility) {
        return Err(UiError::not_found("count", &id.to_string()));
    }
    let short: Vec<String> =
        count.cells.iter().filter(|c| c.discrepancy.is_some_and(|d| d < 0)).map(|c| c.cell.clone()).collect();
    let expected_in_short: Vec<(String, Vec<(String, String)>)> = state
        .run(move |s| {
            short
                .into_iter()
                .map(|cell| {
                    let people = s.count_expected_people(id, &cell)?;
                    Ok((cell, people.into_iter().map(|p| (p.number, p.name)).collect()))
                })
                .collect()
        })
        .await?;
    let named: Vec<&str> =
        expected_in_short.iter().flat_map(|(_, people)| people.iter().map(|p| p.0.as_str())).collect();
    crate::request::log_reads_of(state, &ui.caller, named, "GET /counts/{id}").await?;
    Ok(CountPage {
        chrome: ui.chrome("/counts"),
        expected_in_short,
        discrepancies: count.cells.iter().filter(|c| c.discrepancy.is_some_and(|d| d != 0)).count(),
        may_count: ui.may("POST", "/counts/{id}/entries") && count.state != "cleared",
        count,
        refusal,
        typed: Vec::new(),
    })
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<i64>,
    Query(f): Query<Format>,
) -> UiResult {
    let page_data = count_page(&state, &ui, id, None).await?;
    if f.csv() {
        let text = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        let rows = page_data.count.cells.iter().map(|c| {
            let explained: Vec<String> = c.resolutions.iter().map(|r| format!("{} {}", r.person, r.kind)).collect();
            vec![
                c.cell.clone(),
                c.expected.to_string(),
                text(c.counted),
                c.discrepancy.map(|d| d.to_string()).unwrap_or_default(),
                explained.join("; "),
            ]
        });
        return Ok(csv(&format!("count-{id}"), &["cell", "expected", "counted", "difference", "explained"], rows));
    }
    page(page_data)
}

/// Run a change to a count: back to the count, with the refusal if the service said no.
async fn change<F>(state: &AppState, ui: &Ui, id: i64, work: F) -> UiResult
where
    F: FnOnce(&service::Service<store::Database>, &service::Context) -> service::ServiceResult<CountView>
        + Send
        + 'static,
{
    count_page(state, ui, id, None).await?; // scope: not found outside the caller's facilities
    let ctx = ui.staff().context(chrono::Utc::now());
    match state.run(move |s| work(s, &ctx)).await {
        Ok(_) => Ok(Redirect::to(&format!("/counts/{id}")).into_response()),
        Err(e) if e.status().is_client_error() => {
            page_status(e.status(), count_page(state, ui, id, Some(Refusal::of(&e))).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Counts per cell: inputs named `cell:CODE`; empty ones are not yet counted.
pub(crate) async fn enter(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<i64>,
    body: Bytes,
) -> UiResult {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut counts = Vec::new();
    let mut problems = Vec::new();
    let mut typed = Vec::new();
    for (name, value) in pairs {
        let Some(cell) = name.strip_prefix("cell:") else { continue };
        typed.push((cell.to_string(), value.trim().to_string()));
        match value.trim() {
            "" => {}
            text => match text.parse() {
                Ok(counted) => counts.push(CellCount { cell: cell.to_string(), counted }),
                Err(_) => problems.push(domain::FieldError::new(
                    format!("cell {cell}"),
                    format!("`{text}` is not a number of people"),
                )),
            },
        }
    }
    if !problems.is_empty() {
        // Nothing saved: the count page again with everything as typed, marking each cell whose
        // number was not one.
        let refusal = Refusal::of(&ApiError::validation(problems));
        let mut again = count_page(&state, &ui, id, Some(refusal)).await?;
        again.typed = typed;
        return page_status(StatusCode::UNPROCESSABLE_ENTITY, again);
    }
    change(&state, &ui, id, move |s, ctx| s.enter_counts(ctx, id, &counts)).await
}

#[derive(Deserialize)]
pub(crate) struct ResolveForm {
    person: String,
    kind: String,
    cell: Option<String>,
    returned: Option<String>,
    note: Option<String>,
}

pub(crate) async fn resolve(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<i64>,
    Form(form): Form<ResolveForm>,
) -> UiResult {
    let cell = form.cell.unwrap_or_default().trim().to_string();
    let explanation = match form.kind.as_str() {
        "found_elsewhere" => Explanation::FoundElsewhere { cell, returned: form.returned.is_some() },
        "unaccounted" => Explanation::Unaccounted,
        "moved_on_record" => Explanation::MovedOnRecord,
        "arrived_on_record" => Explanation::ArrivedOnRecord { cell },
        other => {
            return Err(UiError::from(ApiError::validation(vec![domain::FieldError::new(
                "kind",
                format!("`{other}` is not an explanation"),
            )])))
        }
    };
    let note = super::form_optional("note", form.note)?;
    let request = Resolve { person: form.person.trim().to_string(), explanation, note };
    change(&state, &ui, id, move |s, ctx| s.resolve_count(ctx, id, &request)).await
}

pub(crate) async fn clear(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<i64>,
) -> UiResult {
    change(&state, &ui, id, move |s, ctx| s.clear_count(ctx, id)).await
}
