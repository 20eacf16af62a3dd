//! Search, and the person page: everything on record about one person, read-logged.

use askama::Template;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use domain::legal::AlertKind;
use service::incident::IncidentSummary;
use service::legal::LegalRecord;
use service::report::SearchHit;
use service::staff::Role;
use store::{MedicalTask, MovementRecord, Whereabouts};

use super::{csv, page, when, Chrome, Ui, UiResult};
use crate::request::log_read;
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    format: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    hits: Option<Vec<SearchHit>>,
}

/// Most people one search lists.
const SEARCH_LIMIT: u32 = 100;

/// A person number opens the person; words find people by name, ignoring accents, case, word
/// order and missing names (a second surname left out).
pub(crate) async fn search(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<SearchQuery>,
) -> UiResult {
    let words = q.q.unwrap_or_default().trim().to_string();
    if words.is_empty() {
        return page(SearchPage { chrome: ui.chrome("/search"), q: words, hits: None });
    }
    let staff = ui.staff().clone();
    let hits = {
        let (words, staff) = (words.clone(), staff.clone());
        state.run(move |s| s.search_people(&words, "", SEARCH_LIMIT, |f| staff.sees(f))).await?
    };
    // A number typed whole opens the record, when it is a person the caller may see.
    if !words.contains(' ') && q.format.is_none() {
        let number = words.to_uppercase();
        let scope = {
            let number = number.clone();
            state.run(move |s| s.person_scope(&number)).await
        };
        if let Ok(scope) = scope {
            if scope.facilities.iter().any(|f| staff.sees(f)) {
                return Ok(Redirect::to(&format!("/people/{}", super::urlencode(&number))).into_response());
            }
        }
    }
    let route = if q.format.is_some() { "GET /search?format=csv" } else { "GET /search" };
    crate::request::log_reads_of(&state, &ui.caller, hits.iter().map(|h| h.number.as_str()), route).await?;
    if q.format.as_deref() == Some("csv") {
        let rows = hits
            .iter()
            .map(|h| vec![h.number.clone(), h.name.clone(), h.date_of_birth.to_string(), h.facilities.join(" ")]);
        return Ok(csv("search", &["number", "name", "date_of_birth", "facilities"], rows));
    }
    page(SearchPage { chrome: ui.chrome("/search"), q: words, hits: Some(hits) })
}

struct Fact {
    label: &'static str,
    value: String,
}

fn fact(label: &'static str, value: impl Into<String>) -> Fact {
    Fact { label, value: value.into() }
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage {
    chrome: Chrome,
    number: String,
    name: String,
    identity: Vec<Fact>,
    place: Vec<Fact>,
    may_place: bool,
    may_move: bool,
    legal: Option<LegalRecord>,
    /// Why there is no legal record to show.
    legal_missing: Option<String>,
    category: Option<String>,
    classification: Vec<Fact>,
    keep_apart: Vec<(String, String, String, String)>,
    timeline: Vec<MovementRecord>,
    incidents: Vec<IncidentSummary>,
    notification: Option<String>,
    medical: Option<Vec<MedicalTask>>,
    admission: Vec<Fact>,
    /// A deadline or release date passed (true) or near (false), in words.
    legal_alert: Option<(String, bool)>,
}

/// What the person page must shout: held past the pretrial deadline or the release date, or a
/// deadline within the warning days. Days are counted in the facility's time zone.
fn legal_alert(legal: &LegalRecord, in_custody: bool, zone: chrono_tz::Tz) -> Option<(String, bool)> {
    if !in_custody {
        return None;
    }
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    if let Some(sentences) = &legal.sentences {
        let release = sentences.calculation.release_date;
        if today > release {
            return Some((
                format!("Held {} days past the release date {release}.", (today - release).num_days()),
                true,
            ));
        }
    }
    let deadline = legal.pretrial.as_ref()?.deadline;
    match domain::legal::pretrial_alert(deadline, today)? {
        AlertKind::PretrialOverdue => Some((
            format!("Held untried {} days past the pretrial deadline {deadline}.", (today - deadline).num_days()),
            true,
        )),
        _ => Some((format!("The pretrial deadline {deadline} is in {} days.", (deadline - today).num_days()), false)),
    }
}

fn whereabouts(w: &Option<Whereabouts>) -> Vec<Fact> {
    let Some(w) = w else { return vec![fact("In custody", "no")] };
    let mut facts = vec![fact("Facility", w.facility.clone().unwrap_or_else(|| "in transit".into()))];
    if let Some(unit) = &w.unit {
        facts.push(fact("Unit", unit.clone()));
    }
    facts.push(fact("Cell", w.cell.clone().unwrap_or_else(|| "not placed".into())));
    if let Some(bed) = &w.bed {
        facts.push(fact("Bed", bed.clone()));
    }
    if let Some(out) = &w.out {
        facts.push(fact("Out of the facility", out.clone()));
    }
    if let Some(since) = w.in_facility_since {
        facts.push(fact("In the facility since", when(since)));
    }
    facts
}

/// The person page. Staff of other facilities get "not found", as for a number that does not
/// exist; every view is logged as a read before anything is shown (Mandela Rule 9).
pub(crate) async fn person(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(number): Path<String>,
    Query(format): Query<super::Format>,
) -> UiResult {
    let now = chrono::Utc::now();
    let staff = ui.staff().clone();
    let (scope, record) = {
        let number = number.clone();
        state.run(move |s| s.person_record_if(&number, now, |f| staff.sees(f))).await?
    };
    log_read(&state, &ui.caller, &number, "GET /people/{number}").await?;
    if format.csv() {
        let rows = record.timeline.iter().map(|m| {
            vec![
                m.occurred_at.to_rfc3339(),
                m.kind.clone(),
                m.facility.clone(),
                m.cell.clone().unwrap_or_default(),
                m.reason.clone().unwrap_or_default(),
                m.actor.clone(),
            ]
        });
        let header = ["occurred_at", "movement", "facility", "cell", "reason", "recorded_by"];
        return Ok(csv(&format!("movements-{number}"), &header, rows));
    }
    let (staff, visible) = (ui.staff().clone(), ui.staff().clone());
    let (legal, housing, incidents, preference, booking) = {
        let number = number.clone();
        state
            .run(move |s| {
                Ok((
                    // A person never held has no legal record to show; other errors are errors.
                    match s.legal_record(&number, now) {
                        Ok(record) => Ok(record),
                        Err(service::ServiceError::Refused { rule: "legal.never_held", .. }) => {
                            Err("Never held: no legal record.".to_string())
                        }
                        Err(service::ServiceError::NotFound { what: "rule set", key }) => Err(format!(
                            "No rule set `{key}` is loaded for this facility's jurisdiction: deadlines cannot be computed. \
                             An administrator loads one with `custodia ruleset load`."
                        )),
                        Err(e) => return Err(e),
                    },
                    {
                        // Facility staff never see the number of a person held elsewhere.
                        let mut housing = s.person_housing(&number, now)?;
                        if !staff.role.national() {
                            for rule in &mut housing.keep_apart {
                                crate::housing::mask_outside(s, &staff, &mut rule.a)?;
                                crate::housing::mask_outside(s, &staff, &mut rule.b)?;
                            }
                        }
                        housing
                    },
                    s.person_incidents(&number, |f| visible.sees(f))?,
                    s.notification_preference(&number)?,
                    s.current_admission(&number)?,
                ))
            })
            .await?
    };
    let p = &record.person;
    let id = &p.identity;
    let mut identity = vec![
        fact("Date of birth", id.date_of_birth.to_string()),
        fact("Sex", id.sex.as_str()),
        fact("Nationality", id.nationality.clone()),
    ];
    if let Some(gender) = &id.gender_identity {
        identity.push(fact("Gender identity", gender.clone()));
    }
    for d in &id.documents {
        identity.push(fact("Document", format!("{} {} ({})", d.kind, d.number, d.issuing_country)));
    }
    let category = housing
        .category
        .as_ref()
        .map(|c| format!("{}, {}, {}, {}", c.sex.as_str(), c.age.as_str(), c.status.as_str(), c.regime.as_str()));
    let classification = housing
        .classifications
        .first()
        .map(|c| {
            let mut facts = vec![
                fact("Legal status", c.legal_status.as_str()),
                fact("Regime", c.regime.as_str()),
                fact("Security level", c.security_level.as_str()),
                fact("Classified", format!("{} by {}", when(c.effective_from), c.recorded_by)),
            ];
            if !c.vulnerabilities.is_empty() {
                facts.push(fact("Vulnerabilities", c.vulnerabilities.join(", ")));
            }
            facts
        })
        .unwrap_or_default();
    let keep_apart = housing
        .keep_apart
        .iter()
        .map(|k| {
            let state = if k.in_force { "in force" } else { "ended" };
            (format!("{} ↔ {}", k.a, k.b), k.scope.as_str().to_string(), k.reason.clone(), state.to_string())
        })
        .collect();
    let medical = ui.role() == Role::Medical;
    let zone = match record.whereabouts.as_ref().and_then(|w| w.facility.as_deref()) {
        Some(facility) => super::zone_of(&state, facility).await?,
        None => chrono_tz::UTC,
    };
    let (legal, legal_missing) = match legal {
        Ok(record) => (Some(record), None),
        Err(why) => (None, Some(why)),
    };
    let legal_alert = legal.as_ref().and_then(|l| legal_alert(l, record.whereabouts.is_some(), zone));
    let admission = booking.map(|b| admission_facts(&b, medical)).unwrap_or_default();
    let page_data = PersonPage {
        chrome: ui.chrome(""),
        number: p.number.clone(),
        name: id.name.full(),
        identity,
        place: whereabouts(&record.whereabouts),
        may_place: ui.may("GET", "/people/{number}/placement") && record.whereabouts.is_some(),
        may_move: ui.may("GET", "/people/{number}/movement"),
        legal,
        legal_missing,
        category,
        classification,
        keep_apart,
        timeline: record.timeline,
        incidents,
        notification: preference.map(|p| {
            if p.declines {
                format!("declines notification of family (since {})", p.date)
            } else {
                format!("family may be notified (since {})", p.date)
            }
        }),
        medical: medical.then_some(record.medical_tasks),
        admission,
        legal_alert,
    };
    debug_assert!(!scope.facilities.is_empty());
    page(page_data)
}

/// The Rule 7 record of the current (or last) custody episode. Injuries and complaints of
/// ill-treatment are medical: only the medical role sees them.
fn admission_facts(b: &store::BookingRecord, medical: bool) -> Vec<Fact> {
    let basis = &b.legal_basis;
    let mut facts = vec![
        fact("Booking", format!("{} at {}, admitted {}", b.number, b.facility, when(b.admitted_at))),
        fact(
            "Legal basis",
            format!(
                "{} {} of {}, {}",
                basis.kind.as_str().replace('_', " "),
                basis.reference,
                basis.issuing_authority,
                basis.date
            ),
        ),
        fact("Arrested", format!("{} at {}", when(b.arrested_at), b.arrest_place)),
    ];
    let list = |key: &str| b.details.get(key).and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let text = |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_str()).unwrap_or("").to_string();
    for kin in list("next_of_kin") {
        let phone = text(&kin, "phone");
        facts.push(fact("Next of kin", format!("{} ({}) {phone}", text(&kin, "name"), text(&kin, "relationship"))));
    }
    if let Some(contact) = b.details.get("emergency_contact").filter(|c| !c.is_null()) {
        let phone = text(contact, "phone");
        facts.push(fact(
            "Emergency contact",
            format!("{} ({}) {phone}", text(contact, "name"), text(contact, "relationship")),
        ));
    }
    for d in list("dependants") {
        facts.push(fact("Dependant", format!("{} ({})", text(&d, "name"), text(&d, "relationship"))));
    }
    let property = list("property");
    if !property.is_empty() {
        let items: Vec<String> = property
            .iter()
            .map(|p| match p.get("quantity").and_then(|q| q.as_u64()).filter(|q| *q > 1) {
                Some(quantity) => format!("{} ×{quantity}", text(p, "description")),
                None => text(p, "description"),
            })
            .collect();
        facts.push(fact("Property held", items.join(", ")));
    }
    if medical {
        for i in list("injuries") {
            facts.push(fact("Injury at intake", format!("{} {}", text(&i, "description"), text(&i, "location"))));
        }
        for c in list("complaints") {
            facts.push(fact("Complaint of ill-treatment", c.as_str().unwrap_or("").to_string()));
        }
    }
    facts
}
