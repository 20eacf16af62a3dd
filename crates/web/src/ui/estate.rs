//! The dashboard (occupancy against every measure, open alerts) and the estate grid.

use askama::Template;
use axum::extract::{Extension, Query, State};
use serde::Deserialize;

use domain::estate::{Capacity, Occupancy};
use domain::legal::AlertKind;
use service::legal::Alert;
use service::report::{Detail, Measure, OccupancyReport};

use super::{
    csv, form_instant, form_value, grouped, level, page, pct, when, when_exact, Chrome, Format, Ui, UiError, UiResult,
};
use crate::AppState;

/// The measures, in the order pages show them.
pub(crate) const STANDARDS: &[(&str, &str)] =
    &[("declared", "Declared"), ("operational", "Operational"), ("beds", "Beds"), ("icrc", "ICRC"), ("cpt", "CPT")];

fn capacity_by(capacity: &Capacity, standard: &str) -> u64 {
    match standard {
        "operational" => capacity.operational,
        "beds" => capacity.beds,
        "icrc" => capacity.icrc,
        "cpt" => capacity.cpt,
        _ => capacity.declared,
    }
}

fn pct_by(occupancy: &Occupancy, standard: &str) -> Option<f64> {
    match standard {
        "operational" => occupancy.operational,
        "beds" => occupancy.beds,
        "icrc" => occupancy.icrc,
        "cpt" => occupancy.cpt,
        _ => occupancy.declared,
    }
}

/// One measure of one place, ready to draw: the bar is capped at 100 %, the number is not.
pub(crate) struct Bar {
    pub capacity: String,
    pub pct: String,
    pub level: &'static str,
    pub width: u32,
}

impl Bar {
    fn of(measure: &Measure, standard: &str) -> Self {
        let p = pct_by(&measure.occupancy_pct, standard);
        Bar {
            capacity: grouped(capacity_by(&measure.capacity, standard)),
            pct: pct(p),
            level: level(p),
            width: p.map(|p| p.clamp(0.0, 100.0).round() as u32).unwrap_or(0),
        }
    }
}

pub(crate) struct FacilityLine {
    code: String,
    name: String,
    population: String,
    bars: Vec<Bar>,
}

fn line(code: String, name: String, measure: &Measure) -> FacilityLine {
    FacilityLine {
        code,
        name,
        population: grouped(measure.population),
        bars: STANDARDS.iter().map(|(s, _)| Bar::of(measure, s)).collect(),
    }
}

pub(crate) struct AlertCount {
    kind: &'static str,
    label: &'static str,
    count: usize,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    at: String,
    standards: &'static [(&'static str, &'static str)],
    facilities: Vec<FacilityLine>,
    total: FacilityLine,
    in_transit: u64,
    /// When the alerts were computed, and their counts by kind.
    alerts: Option<(String, Vec<AlertCount>)>,
    open_counts: Option<Vec<(i64, String, String)>>,
}

/// The report as the caller may see it.
async fn occupancy(state: &AppState, ui: &Ui, at: domain::time::Instant, detail: Detail) -> UiResult<OccupancyReport> {
    let report = state.run(move |s| s.occupancy(at, detail)).await?;
    Ok(crate::request::scoped(report, ui.staff()))
}

/// The alerts of the caller's facilities; overdue obligations only for the roles that follow them.
pub(crate) fn visible_alerts<'a>(ui: &Ui, all: &'a [Alert]) -> Vec<&'a Alert> {
    let obligations = ui.may("GET", "/obligations");
    all.iter()
        .filter(|a| obligations || a.kind != AlertKind::ObligationOverdue)
        .filter(|a| a.seen_by(|f| ui.staff().sees(f)))
        .collect()
}

/// The kinds of alert the caller may see, with their labels.
pub(crate) fn kinds_shown(ui: &Ui) -> impl Iterator<Item = &'static (AlertKind, &'static str)> {
    let obligations = ui.may("GET", "/obligations");
    ALERT_KINDS.iter().filter(move |(kind, _)| obligations || *kind != AlertKind::ObligationOverdue)
}

pub(crate) const ALERT_KINDS: &[(AlertKind, &str)] = &[
    (AlertKind::PretrialOverdue, "Pretrial deadline passed"),
    (AlertKind::PretrialDueSoon, "Pretrial deadline within 30 days"),
    (AlertKind::ReleaseOverdue, "Held past release date"),
    (AlertKind::TransferUnreceived, "Transfer not received"),
    (AlertKind::ObligationOverdue, "Notification overdue"),
];

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(format): Query<Format>,
) -> UiResult {
    let now = chrono::Utc::now();
    let report = occupancy(&state, &ui, now, Detail::Facility).await?;
    if format.csv() {
        let rows = report.facilities.iter().map(|f| measure_row(&f.code, &f.name, &f.measure));
        return Ok(csv("occupancy", &MEASURE_HEADER, rows));
    }
    let alerts = if ui.may("GET", "/alerts") {
        let (at, all) = state.recent_alerts().await?;
        let mine = visible_alerts(&ui, &all);
        Some((
            when_exact(at),
            kinds_shown(&ui)
                .map(|(kind, label)| AlertCount {
                    kind: kind.as_str(),
                    label,
                    count: mine.iter().filter(|a| a.kind == *kind).count(),
                })
                .collect(),
        ))
    } else {
        None
    };
    let open_counts = if ui.may("GET", "/counts") {
        let scope = (!ui.role().national()).then(|| ui.staff().facilities.clone());
        let counts = state.run(move |s| s.uncleared_counts(scope.as_deref())).await?;
        Some(
            counts
                .into_iter()
                .map(|(id, facility, unit)| (id, facility, unit.unwrap_or_else(|| "whole facility".into())))
                .collect(),
        )
    } else {
        None
    };
    page(Dashboard {
        chrome: ui.chrome("/"),
        at: when(report.at),
        standards: STANDARDS,
        total: line("TOTAL".into(), "All facilities you see".into(), &report.total),
        facilities: report.facilities.iter().map(|f| line(f.code.clone(), f.name.clone(), &f.measure)).collect(),
        in_transit: report.in_transit,
        alerts,
        open_counts,
    })
}

const MEASURE_HEADER: [&str; 13] = [
    "code",
    "name",
    "population",
    "declared",
    "declared_pct",
    "operational",
    "operational_pct",
    "beds",
    "beds_pct",
    "icrc",
    "icrc_pct",
    "cpt",
    "cpt_pct",
];

fn measure_row(code: &str, name: &str, m: &Measure) -> Vec<String> {
    let mut row = vec![code.to_string(), name.to_string(), m.population.to_string()];
    for (standard, _) in STANDARDS {
        row.push(capacity_by(&m.capacity, standard).to_string());
        row.push(pct_by(&m.occupancy_pct, standard).map(|p| format!("{p:.1}")).unwrap_or_default());
    }
    row
}

// ---------------------------------------------------------------------------------------------
// Estate grid
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct EstateQuery {
    facility: Option<String>,
    at: Option<String>,
    standard: Option<String>,
    format: Option<String>,
}

pub(crate) struct CellBox {
    code: String,
    population: u64,
    capacity: String,
    /// Rounded to a whole percent to fit the grid; the title has the exact figure.
    short_pct: String,
    pct: String,
    level: &'static str,
    out_of_order: Option<String>,
}

pub(crate) struct UnitGrid {
    code: String,
    population: String,
    bar: Bar,
    cells: Vec<CellBox>,
}

#[derive(Template)]
#[template(path = "estate.html")]
struct EstatePage {
    chrome: Chrome,
    facilities: Vec<(String, String)>,
    facility: String,
    name: String,
    at: String,
    at_value: String,
    /// The facility's time zone, in which "as of" is typed.
    zone: String,
    standard: String,
    standard_label: &'static str,
    standards: &'static [(&'static str, &'static str)],
    total: FacilityLine,
    units: Vec<UnitGrid>,
    cells: usize,
    out_of_order: usize,
}

pub(crate) async fn estate(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<EstateQuery>,
) -> UiResult {
    let staff = ui.staff().clone();
    let facilities = state.run(|s| s.facilities()).await?;
    let mine: Vec<&store::Facility> = facilities.iter().filter(|f| staff.sees(&f.code)).collect();
    let chosen = q.facility.clone().or_else(|| mine.first().map(|f| f.code.clone())).unwrap_or_default();
    let Some(record) = mine.iter().find(|f| f.code == chosen) else {
        return Err(UiError::not_found("facility", &chosen));
    };
    let zone: chrono_tz::Tz = record.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let at = form_instant("at", q.at.as_deref(), zone)?;
    let standard = q.standard.filter(|s| STANDARDS.iter().any(|(code, _)| code == s)).unwrap_or("declared".into());
    let report = occupancy(&state, &ui, at, Detail::Cell).await?;
    let choices: Vec<(String, String)> = report.facilities.iter().map(|f| (f.code.clone(), f.name.clone())).collect();
    let Some(facility) = report.facilities.into_iter().find(|f| f.code == chosen) else {
        // The facility was not open yet at that instant.
        return Err(UiError::not_found("facility at that instant", &chosen));
    };
    let units = facility.units.clone().unwrap_or_default();
    if q.format.as_deref() == Some("csv") {
        let rows = units.iter().flat_map(|u| {
            u.cells.iter().flatten().map(move |c| {
                let mut row = vec![u.code.clone(), c.code.clone(), c.out_of_order.clone().unwrap_or_default()];
                row.extend(measure_row("", "", &c.measure).into_iter().skip(2));
                row
            })
        });
        let header = [&["unit", "cell", "out_of_order"][..], &MEASURE_HEADER[2..]].concat();
        return Ok(csv(&format!("estate-{}", facility.code), &header, rows));
    }
    let mut cells = 0;
    let mut out_of_order = 0;
    let units = units
        .iter()
        .map(|u| UnitGrid {
            code: u.code.clone(),
            population: grouped(u.measure.population),
            bar: Bar::of(&u.measure, &standard),
            cells: u
                .cells
                .iter()
                .flatten()
                .map(|c| {
                    let bar = Bar::of(&c.measure, &standard);
                    cells += 1;
                    out_of_order += usize::from(c.out_of_order.is_some());
                    CellBox {
                        code: c.code.clone(),
                        population: c.measure.population,
                        capacity: bar.capacity,
                        short_pct: pct_by(&c.measure.occupancy_pct, &standard)
                            .map(|p| format!("{p:.0}%"))
                            .unwrap_or_else(|| "–".into()),
                        pct: bar.pct,
                        level: bar.level,
                        out_of_order: c.out_of_order.clone(),
                    }
                })
                .collect(),
        })
        .collect();
    page(EstatePage {
        chrome: ui.chrome("/estate"),
        facilities: choices,
        total: line(facility.code.clone(), facility.name.clone(), &facility.measure),
        facility: facility.code,
        name: facility.name,
        at: when(at),
        at_value: form_value(at, zone),
        zone: zone.name().to_string(),
        standard_label: STANDARDS.iter().find(|(c, _)| *c == standard).map(|(_, l)| *l).unwrap_or("Declared"),
        standard,
        standards: STANDARDS,
        units,
        cells,
        out_of_order,
    })
}
