//! `custodia incident`, `obligation`, `notification` and `statistics`: incidents, injuries, the
//! notification obligations they open, family-notification preferences and incident statistics.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;

use domain::incident::{IncidentKind, InjurySeverity, Month, NotificationMethod};
use domain::text::{LongText, ShortText};
use domain::time::{parse_rfc3339, rfc3339};
use service::incident::{
    IncidentRecord, IncidentReport, IncidentStatistics, IncidentSummary, InjuryReport, NotificationPreference,
    ObligationClosure, ObligationState, ObligationView, PlaceFigures,
};
use service::Context;

use crate::output::{csv_cell, Format};

/// Incidents and injuries.
#[derive(Subcommand)]
pub enum IncidentCommand {
    /// Record an incident from a JSON file (`-` reads standard input); see docs/incident-example.json.
    Report {
        /// JSON file with facility, kind, at, cell, location, people, staff, description.
        file: PathBuf,
    },
    /// List incidents, newest recorded first.
    List {
        /// Only this facility's.
        #[arg(long)]
        facility: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One incident with its people, injuries and obligations.
    Show {
        /// Incident number, for example INC-CECOT-2026-000012.
        number: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Document an injury of a person involved (health care staff).
    Injury {
        /// Incident number.
        number: String,
        /// Person number.
        #[arg(long)]
        person: String,
        /// minor, serious or fatal.
        #[arg(long, value_parser = severity)]
        severity: InjurySeverity,
        /// What was found.
        #[arg(long)]
        description: LongText,
    },
}

/// Notification obligations (next of kin, Mandela Rule 69; independent authority, Rule 71).
#[derive(Subcommand)]
pub enum ObligationCommand {
    /// Open obligations by due time (or only overdue ones, or all).
    List {
        /// Only those open past their due time.
        #[arg(long, conflicts_with = "all")]
        overdue: bool,
        /// Closed ones too.
        #[arg(long)]
        all: bool,
        /// Only this facility's.
        #[arg(long)]
        facility: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Close an obligation with the evidence that it was met.
    Close {
        /// The obligation's reference, for example INC-CECOT-2026-000012.1.
        id: String,
        /// Name of the person told.
        #[arg(long)]
        notified: ShortText,
        /// In what capacity they were told (mother, duty judge…).
        #[arg(long)]
        capacity: ShortText,
        /// When they were told (RFC 3339).
        #[arg(long)]
        at: String,
        /// phone, in_person, letter, email or other.
        #[arg(long, value_parser = method)]
        method: NotificationMethod,
        /// Anything worth keeping.
        #[arg(long)]
        note: Option<LongText>,
    },
}

/// A person's wish about their family being notified.
#[derive(Subcommand)]
pub enum NotificationCommand {
    /// Record that the person declines that their family be notified (never applies to a death).
    Decline {
        /// Person number.
        person: String,
        /// When the person said so (YYYY-MM-DD); today when absent.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// How the wish was expressed.
        #[arg(long)]
        note: Option<LongText>,
    },
    /// Record that the person withdraws a refusal: their family is notified again.
    Accept {
        /// Person number.
        person: String,
        /// When the person said so (YYYY-MM-DD); today when absent.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// How the wish was expressed.
        #[arg(long)]
        note: Option<LongText>,
    },
}

/// Statistics.
#[derive(Subcommand)]
pub enum StatisticsCommand {
    /// Incidents by kind, per 1,000 people per month, deaths in custody and per 10,000 people.
    Incidents {
        /// First month (YYYY-MM); eleven months before --to when absent.
        #[arg(long, value_parser = month)]
        from: Option<Month>,
        /// Last month (YYYY-MM); this month when absent.
        #[arg(long, value_parser = month)]
        to: Option<Month>,
        /// Only this facility.
        #[arg(long)]
        facility: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Keep-apart rules in force by scope and kind, and per facility.
    KeepApart {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

fn codes<T: Copy + std::fmt::Display>(all: &[T]) -> String {
    all.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
}

fn severity(text: &str) -> Result<InjurySeverity, String> {
    InjurySeverity::parse(text).ok_or_else(|| format!("`{text}` is not one of: {}", codes(&InjurySeverity::ALL)))
}

fn method(text: &str) -> Result<NotificationMethod, String> {
    NotificationMethod::parse(&text.replace('-', "_"))
        .ok_or_else(|| format!("`{text}` is not one of: {}", codes(&NotificationMethod::ALL)))
}

fn month(text: &str) -> Result<Month, String> {
    Month::parse(text)
}

/// Run `custodia incident …`.
pub fn run_incident(db: &str, ctx: &Context, command: IncidentCommand) -> anyhow::Result<()> {
    match command {
        IncidentCommand::Report { file } => {
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            }
            let report = IncidentReport::from_json(&text)?;
            let recorded = crate::open(db)?.record_incident(ctx, &report)?;
            println!(
                "recorded incident {}, {} obligation(s) opened (audit event {})",
                recorded.number, recorded.obligations, recorded.audit_seq
            );
        }
        IncidentCommand::List { facility, limit, format } => {
            let list = crate::open(db)?.incidents(facility.as_deref(), |_| true, None, limit)?;
            incidents(&list, format)?;
        }
        IncidentCommand::Show { number, format } => {
            let record = crate::open(db)?.incident(&number, |_| true, ctx.now)?;
            if matches!(format, Format::Table) {
                incident(&record);
            } else {
                println!("{}", serde_json::to_string(&record)?);
            }
        }
        IncidentCommand::Injury { number, person, severity, description } => {
            let injury = InjuryReport { person, severity, description };
            let documented = crate::open(db)?.document_injury(ctx, &number, &injury)?;
            println!(
                "documented a {severity} injury of {} in {}, {} obligation(s) opened (audit event {})",
                documented.person, documented.incident, documented.obligations, documented.audit_seq
            );
        }
    }
    Ok(())
}

/// Run `custodia obligation …`.
pub fn run_obligation(db: &str, ctx: &Context, command: ObligationCommand) -> anyhow::Result<()> {
    match command {
        ObligationCommand::List { overdue, all, facility, format } => {
            let state = match (overdue, all) {
                (true, _) => ObligationState::Overdue,
                (_, true) => ObligationState::All,
                _ => ObligationState::Open,
            };
            let list = crate::open(db)?.obligations(state, facility.as_deref(), |_| true, ctx.now)?;
            obligations(&list, format)?;
        }
        ObligationCommand::Close { id, notified, capacity, at, method, note } => {
            let at = parse_rfc3339(&at).map_err(|e| anyhow::anyhow!("--at: {e}"))?;
            let closure = ObligationClosure { notified, capacity, at, method, note };
            let closed = crate::open(db)?.close_obligation(ctx, &id, &closure)?;
            println!("closed {} (audit event {})", closed.id, closed.audit_seq);
        }
    }
    Ok(())
}

/// Run `custodia notification …`.
pub fn run_notification(db: &str, ctx: &Context, command: NotificationCommand) -> anyhow::Result<()> {
    let (person, preference) = match command {
        NotificationCommand::Decline { person, date, note } => {
            (person, NotificationPreference { declines: true, date, note })
        }
        NotificationCommand::Accept { person, date, note } => {
            (person, NotificationPreference { declines: false, date, note })
        }
    };
    let recorded = crate::open(db)?.set_notification_preference(ctx, &person, &preference)?;
    let wish = if recorded.declines { "declines" } else { "accepts" };
    println!(
        "{} {wish} that their family be notified, as of {} (audit event {}); a death is always notified",
        recorded.person, recorded.date, recorded.audit_seq
    );
    Ok(())
}

/// Run `custodia statistics …`.
pub fn run_statistics(db: &str, ctx: &Context, command: StatisticsCommand) -> anyhow::Result<()> {
    match command {
        StatisticsCommand::Incidents { from, to, facility, format } => {
            let stats = crate::open(db)?.incident_statistics(from, to, facility.as_deref(), |_| true, ctx.now)?;
            statistics(&stats, format)
        }
        StatisticsCommand::KeepApart { format } => crate::housing::keep_apart_statistics(db, ctx, format),
    }
}

fn opt(text: &Option<String>) -> &str {
    text.as_deref().unwrap_or("")
}

fn incidents(list: &[IncidentSummary], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(list)?),
        Format::Csv => {
            println!("number,facility,kind,occurred_at,recorded_at,cell,location,people,description");
            for i in list {
                println!(
                    "{},{},{},{},{},{},{},{},{}",
                    i.number,
                    csv_cell(&i.facility),
                    i.kind,
                    rfc3339(i.occurred_at),
                    rfc3339(i.recorded_at),
                    csv_cell(opt(&i.cell)),
                    csv_cell(opt(&i.location)),
                    i.people,
                    csv_cell(&i.description)
                );
            }
        }
        Format::Table => {
            for i in list {
                let place = [i.cell.as_deref(), i.location.as_deref()].into_iter().flatten().collect::<Vec<_>>();
                println!(
                    "{:<24} {:<18} {}  {:<20} {} people  {}",
                    i.number,
                    i.kind.as_str(),
                    rfc3339(i.occurred_at),
                    place.join(", "),
                    i.people,
                    i.description
                );
            }
            println!("{} incident(s)", list.len());
        }
    }
    Ok(())
}

fn incident(r: &IncidentRecord) {
    println!("{}  {} at {}", r.number, r.kind, r.facility);
    println!("happened {}, recorded {} by {}", rfc3339(r.occurred_at), rfc3339(r.recorded_at), r.recorded_by);
    let place = [r.cell.as_deref().map(|c| format!("cell {c}")), r.location.clone()];
    let place: Vec<String> = place.into_iter().flatten().collect();
    if !place.is_empty() {
        println!("where: {}", place.join(", "));
    }
    println!("what: {}", r.description);
    if !r.staff.is_empty() {
        println!("staff: {}", r.staff.join(", "));
    }
    for p in &r.people {
        let injured = match (p.injured, p.injury_documented) {
            (_, true) => ", injury documented",
            (true, false) => ", injured",
            _ => "",
        };
        println!("  {:<16} {:<44} {}{injured}", p.person, p.name, p.role);
    }
    for j in r.injuries.iter().flatten() {
        println!(
            "injury of {} ({}): {}  (documented {} by {})",
            j.person,
            j.severity,
            j.description,
            rfc3339(j.documented_at),
            j.documented_by
        );
    }
    for o in r.obligations.iter().flatten() {
        println!("obligation {}", obligation_line(o));
    }
}

fn obligation_status(o: &ObligationView) -> String {
    match &o.closure {
        Some(c) => format!("closed: {} ({}) told {} by {}", c.notified, c.capacity, rfc3339(c.at), c.method),
        None if o.overdue => "OVERDUE".to_string(),
        None => "open".to_string(),
    }
}

fn obligation_line(o: &ObligationView) -> String {
    let whom = match (&o.person, &o.name) {
        (Some(number), Some(name)) => format!("next of kin of {number} {name}"),
        _ => "independent authority".to_string(),
    };
    format!(
        "{:<28} {:<14} tell {whom} ({}), due {}  {}",
        o.id,
        o.event.as_str(),
        o.rule,
        rfc3339(o.due_at),
        obligation_status(o)
    )
}

fn obligations(list: &[ObligationView], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(list)?),
        Format::Csv => {
            println!(
                "id,incident,facility,kind,event,person,opened_at,due_at,overdue,notified,capacity,notified_at,method,closed_by"
            );
            for o in list {
                let c = o.closure.as_ref();
                println!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    o.id,
                    o.incident,
                    csv_cell(&o.facility),
                    o.kind,
                    o.event,
                    opt(&o.person),
                    rfc3339(o.opened_at),
                    rfc3339(o.due_at),
                    o.overdue,
                    csv_cell(c.map(|c| c.notified.as_str()).unwrap_or("")),
                    csv_cell(c.map(|c| c.capacity.as_str()).unwrap_or("")),
                    c.map(|c| rfc3339(c.at)).unwrap_or_default(),
                    c.map(|c| c.method.as_str()).unwrap_or(""),
                    csv_cell(c.map(|c| c.closed_by.as_str()).unwrap_or(""))
                );
            }
        }
        Format::Table => {
            for o in list {
                println!("{}", obligation_line(o));
            }
            println!("{} obligation(s)", list.len());
        }
    }
    Ok(())
}

fn number(x: Option<f64>) -> String {
    x.map(|x| format!("{x:.2}")).unwrap_or_default()
}

fn statistics(stats: &IncidentStatistics, format: Format) -> anyhow::Result<()> {
    let places: Vec<&PlaceFigures> = stats.facilities.iter().chain(std::iter::once(&stats.total)).collect();
    let label = |p: &PlaceFigures| p.facility.clone().unwrap_or_else(|| "TOTAL".to_string());
    match format {
        Format::Json => println!("{}", serde_json::to_string(stats)?),
        Format::Csv => {
            let mut header = vec![
                "facility".to_string(),
                "month".into(),
                "days".into(),
                "average_population".into(),
                "deaths".into(),
                "deaths_per_10000".into(),
            ];
            for kind in IncidentKind::ALL {
                header.push(format!("incidents_{kind}"));
                header.push(format!("per_1000_{kind}"));
            }
            println!("{}", header.join(","));
            for place in &places {
                for m in &place.months {
                    let mut row = vec![
                        csv_cell(&label(place)),
                        m.month.clone(),
                        m.days.to_string(),
                        format!("{:.2}", m.average_population),
                        m.deaths.to_string(),
                        String::new(),
                    ];
                    for kind in IncidentKind::ALL {
                        row.push(m.incidents.get(kind.as_str()).copied().unwrap_or(0).to_string());
                        row.push(number(m.per_1000.get(kind.as_str()).copied().flatten()));
                    }
                    println!("{}", row.join(","));
                }
                let r = &place.range;
                let mut row = vec![
                    csv_cell(&label(place)),
                    "range".to_string(),
                    r.days.to_string(),
                    format!("{:.2}", r.average_population),
                    r.deaths.to_string(),
                    number(r.deaths_per_10000),
                ];
                for kind in IncidentKind::ALL {
                    row.push(r.incidents.get(kind.as_str()).copied().unwrap_or(0).to_string());
                    row.push(number(r.per_1000_per_month.get(kind.as_str()).copied().flatten()));
                }
                println!("{}", row.join(","));
            }
        }
        Format::Table => {
            let scope = if stats.national { "national total" } else { "total over the facilities listed" };
            println!("Incidents {} to {} (UTC months; {scope})", stats.from, stats.to);
            for place in &places {
                println!();
                println!("{}", label(place));
                println!(
                    "{:<8} {:>5} {:>10} {:>9} {:>6}  incidents by kind (per 1,000 people)",
                    "month", "days", "avg pop", "incidents", "deaths"
                );
                for m in &place.months {
                    let kinds: Vec<String> = IncidentKind::ALL
                        .iter()
                        .filter_map(|k| {
                            let n = m.incidents.get(k.as_str()).copied().unwrap_or(0);
                            let rate = number(m.per_1000.get(k.as_str()).copied().flatten());
                            (n > 0).then(|| format!("{k} {n} ({rate})"))
                        })
                        .collect();
                    println!(
                        "{:<8} {:>5} {:>10.2} {:>9} {:>6}  {}",
                        m.month,
                        m.days,
                        m.average_population,
                        m.incidents.values().sum::<u64>(),
                        m.deaths,
                        kinds.join(", ")
                    );
                }
                let r = &place.range;
                println!(
                    "{:<8} {:>5} {:>10.2} {:>9} {:>6}  deaths per 10,000 people: {}",
                    "range",
                    r.days,
                    r.average_population,
                    r.incidents.values().sum::<u64>(),
                    r.deaths,
                    r.deaths_per_10000.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into())
                );
            }
        }
    }
    Ok(())
}
