//! How results are printed: aligned tables for people, JSON and CSV for programs.

use clap::ValueEnum;

use domain::estate::{Capacity, Occupancy};
use domain::time::{rfc3339, Instant};
use service::demo::DemoSummary;
use service::report::{Measure, OccupancyReport, PersonRecord};
use store::{Occupant, Whereabouts};

/// Output format.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

const MEASURES: [&str; 5] = ["declared", "operational", "beds", "icrc", "cpt"];

fn capacities(c: &Capacity) -> [u64; 5] {
    [c.declared, c.operational, c.beds, c.icrc, c.cpt]
}

fn percents(o: &Occupancy) -> [Option<f64>; 5] {
    [o.declared, o.operational, o.beds, o.icrc, o.cpt]
}

fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "–".into())
}

use service::csv::cell as csv_field;

fn table_row(label: &str, m: &Measure) -> String {
    let mut line = format!("{label:<28} {:>8}", m.population);
    for (c, p) in capacities(&m.capacity).iter().zip(percents(&m.occupancy_pct)) {
        line.push_str(&format!(" {c:>8} {:>7}", pct(p)));
    }
    line
}

fn csv_row(level: &str, code: &str, name: &str, m: &Measure) -> String {
    let mut fields = vec![level.to_string(), csv_field(code), csv_field(name), m.population.to_string()];
    fields.extend(capacities(&m.capacity).iter().map(|c| c.to_string()));
    fields.extend(percents(&m.occupancy_pct).iter().map(|p| p.map(|p| format!("{p:.1}")).unwrap_or_default()));
    fields.join(",")
}

/// The occupancy report in the chosen format.
pub fn occupancy(report: &OccupancyReport, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(report)?),
        Format::Csv => {
            let mut header = vec!["level".to_string(), "code".into(), "name".into(), "population".into()];
            header.extend(MEASURES.iter().map(|m| format!("capacity_{m}")));
            header.extend(MEASURES.iter().map(|m| format!("occupancy_pct_{m}")));
            println!("{}", header.join(","));
            for f in &report.facilities {
                println!("{}", csv_row("facility", &f.code, &f.name, &f.measure));
                for u in f.units.iter().flatten() {
                    println!("{}", csv_row("unit", &format!("{}/{}", f.code, u.code), "", &u.measure));
                    for c in u.cells.iter().flatten() {
                        println!("{}", csv_row("cell", &format!("{}/{}", f.code, c.code), "", &c.measure));
                    }
                }
            }
            println!("{}", csv_row("total", "", "", &report.total));
        }
        Format::Table => {
            println!("Occupancy at {}", rfc3339(report.at));
            let mut header = format!("{:<28} {:>8}", "facility", "held");
            for m in MEASURES {
                header.push_str(&format!(" {m:>16}"));
            }
            println!("{header}");
            for f in &report.facilities {
                println!("{}", table_row(&f.code, &f.measure));
                for u in f.units.iter().flatten() {
                    println!("{}", table_row(&format!("  {}", u.code), &u.measure));
                    for c in u.cells.iter().flatten() {
                        let label =
                            if c.in_use { format!("    {}", c.code) } else { format!("    {} (out of order)", c.code) };
                        println!("{}", table_row(&label, &c.measure));
                    }
                }
            }
            println!("{}", table_row("TOTAL", &report.total));
            if report.in_transit > 0 {
                println!("in transit between facilities: {}", report.in_transit);
            }
            println!("(each measure: capacity, then population as a percentage of it; unit and cell rows count placed people)");
        }
    }
    Ok(())
}

/// One line saying where a person was.
pub fn whereabouts_line(person: &str, at: Instant, w: &Whereabouts) -> String {
    let line = whereabouts_place(person, at, w);
    match &w.out {
        Some(reason) => format!("{line}; out of the facility then ({reason})"),
        None => line,
    }
}

fn whereabouts_place(person: &str, at: Instant, w: &Whereabouts) -> String {
    match (&w.facility, &w.cell) {
        (None, _) => format!("{person} was in transit at {}", rfc3339(at)),
        (Some(f), None) => format!("{person} was at {f}, not placed in a cell, at {}", rfc3339(at)),
        (Some(f), Some(c)) => format!(
            "{person} was at {f}, unit {}, cell {c}{} at {} (in that cell since {})",
            w.unit.as_deref().unwrap_or("?"),
            w.bed.as_deref().map(|b| format!(", bed {b}")).unwrap_or_default(),
            rfc3339(at),
            w.in_cell_since.map(rfc3339).unwrap_or_default()
        ),
    }
}

/// People found in a place.
pub fn occupants(list: &[Occupant], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(list)?),
        Format::Csv => {
            println!("number,name,cell,bed,since");
            for o in list {
                println!(
                    "{},{},{},{},{}",
                    o.number,
                    csv_field(&o.name),
                    o.cell.as_deref().unwrap_or(""),
                    o.bed.as_deref().unwrap_or(""),
                    rfc3339(o.since)
                );
            }
        }
        Format::Table => {
            for o in list {
                println!(
                    "{:<16} {:<44} {:<10} {:<4} {}",
                    o.number,
                    o.name,
                    o.cell.as_deref().unwrap_or("-"),
                    o.bed.as_deref().unwrap_or("-"),
                    rfc3339(o.since)
                );
            }
            println!("{} people", list.len());
        }
    }
    Ok(())
}

/// A person's record.
pub fn person(record: &PersonRecord, format: Format) -> anyhow::Result<()> {
    if !matches!(format, Format::Table) {
        println!("{}", serde_json::to_string(record)?);
        return Ok(());
    }
    let id = &record.person.identity;
    println!("{}  {}", record.person.number, id.name.full());
    println!("born {}, {}, nationality {}", id.date_of_birth, id.sex.as_str(), id.nationality);
    for d in &id.documents {
        println!("document {} {} ({})", d.kind, d.number, d.issuing_country);
    }
    match &record.whereabouts {
        Some(w) => println!("{}", whereabouts_line(&record.person.number, chrono::Utc::now(), w)),
        None => println!("not in custody"),
    }
    for t in &record.medical_tasks {
        println!("medical examination ({}): {}", t.booking, t.reason);
    }
    println!("timeline:");
    for m in &record.timeline {
        println!(
            "  {}  {:<12} {:<8} {:<8} {:<4} {}  (booking {}, recorded {} by {})",
            rfc3339(m.occurred_at),
            m.kind,
            m.facility,
            m.cell.as_deref().unwrap_or(""),
            m.bed.as_deref().unwrap_or(""),
            m.reason.as_deref().unwrap_or(""),
            m.booking,
            rfc3339(m.recorded_at),
            m.actor
        );
    }
    Ok(())
}

/// What the demo built, with the capacity contrast that is the point of the project.
pub fn demo_summary(summary: &DemoSummary, report: &OccupancyReport, took: std::time::Duration) {
    let c = &summary.counts;
    println!("Demo ({:?}, seed {}) built in {:.1} s", summary.scale, summary.seed, took.as_secs_f64());
    println!(
        "history {} → {}: {} facilities, {} units, {} cells, {} beds",
        rfc3339(summary.history_from),
        rfc3339(summary.history_to),
        c.facilities,
        c.units,
        c.cells,
        c.beds
    );
    println!(
        "{} people on record, {} custody episodes, {} movements, {} audit events",
        c.people, c.bookings, c.movements, c.audit_events
    );
    println!("{} in custody now, {:.1} % untried (remand order)", c.in_custody, summary.untried_pct);
    println!();
    let _ = occupancy(report, Format::Table);
}

/// A text as one CSV field, quoted when it needs to be and neutralised when a spreadsheet would
/// run it as a formula (the same code as the pages' downloads).
pub use service::csv::cell as csv_cell;

/// Staff accounts as a table, JSON or CSV.
pub fn users(users: &[service::staff::Account], format: Format) -> anyhow::Result<()> {
    let scope = |u: &service::staff::Account| {
        if u.role.national() {
            "all facilities".to_string()
        } else {
            u.facilities.join(" ")
        }
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string(users)?),
        Format::Csv => {
            println!("name,role,facilities,disabled");
            for u in users {
                println!(
                    "{},{},{},{}",
                    csv_cell(&u.name),
                    u.role.as_str(),
                    csv_cell(&u.facilities.join(" ")),
                    u.disabled
                );
            }
        }
        Format::Table => {
            for u in users {
                let state = if u.disabled { "disabled" } else { "" };
                println!("{:<24} {:<9} {:<32} {state}", u.name, u.role.as_str(), scope(u));
            }
            println!("{} account(s)", users.len());
        }
    }
    Ok(())
}
