//! `custodia bench …`: end-to-end measurements printed as JSON lines, reproduced by docs/BENCHMARKS.md.

use std::time::Instant as Clock;

use clap::Subcommand;
use serde_json::json;

use service::custody::{admit_in, AdmitRequest};
use service::layout::FacilityLayout;
use service::report::Detail;
use service::{Context, Service};
use store::Database;
use store::{Store, Tx};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Bulk admission rate against a raw prepared-insert loop writing the same rows, each into a fresh file.
    Admit {
        /// People to admit.
        #[arg(long, default_value_t = 100_000)]
        people: u64,
    },
    /// The durable commit rate of SQLite on this disk (one small row per transaction): the ceiling
    /// for writes that each commit on their own, to set beside the HTTP write benchmark.
    Commits {
        /// Transactions to commit.
        #[arg(long, default_value_t = 5_000)]
        commits: u64,
    },
    /// Bulk allocation of a night's intake on the demo estate (issue 4): one JSON line; exits 1
    /// when the independent checker finds a broken rule.
    Allocate {
        /// People to place (default 40,000 for cecot, 5,000 for national).
        #[arg(long)]
        people: Option<usize>,
        /// The estate they arrive at.
        #[arg(long, value_enum, default_value = "cecot")]
        layout: crate::bench_allocate::Layout,
        /// Seed of the generated intake and rules.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the instance (neutral JSON) here, for the exact-solver comparison.
        #[arg(long)]
        export: Option<std::path::PathBuf>,
    },
    /// Release-date calculations per second over varied, deterministic sentence sets (issue 5).
    Sentences {
        /// Sentence sets to calculate.
        #[arg(long, default_value_t = 200_000)]
        sets: usize,
    },
    /// Identity resolution on an existing database (for example the national demo): real people
    /// sampled and their identities perturbed, candidates one by one (p50, p99) and as a batch, recall.
    Identity {
        /// Intake records to resolve.
        #[arg(long, default_value_t = 10_000)]
        intakes: usize,
        /// Seed of the sample and of the perturbations.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Query and verification times on an existing database (for example the national demo).
    Queries {
        /// Repetitions of each query; the median is reported.
        #[arg(long, default_value_t = 21)]
        runs: usize,
        /// How far back the queries of the past look, in days.
        #[arg(long, default_value_t = 400)]
        days_ago: i64,
        /// Also time who is in this facility (besides the median and the largest).
        #[arg(long)]
        facility: Option<String>,
    },
}

const BENCH_LAYOUT: &str = r#"
[facility]
code = "BENCH"
name = "Bench"
jurisdiction = "sv"
time_zone = "America/El_Salvador"
declared_capacity = 100000

[[units]]
code = "A"
[[units.cell_series]]
prefix = "A-"
count = 10
floor_area_m2 = 100.0
beds = 10
"#;

fn fresh(dir: &tempfile::TempDir, name: &str) -> anyhow::Result<Service<Database>> {
    let service = Service::new(service::open_database(&format!("sqlite://{}", dir.path().join(name).display()), true)?);
    service.init()?;
    let layout = FacilityLayout::parse(BENCH_LAYOUT)?;
    let ctx = Context::new("bench", chrono::Utc::now() - chrono::Duration::days(1));
    service.add_facility(&ctx, &layout)?;
    Ok(service)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn time_ms(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Clock::now();
        f()?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(median(samples))
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Admit { people } => bench_admit(people),
        BenchCommand::Allocate { people, layout, seed, export } => {
            crate::bench_allocate::run(layout, people, seed, export)
        }
        BenchCommand::Commits { commits } => {
            let dir = tempfile::tempdir()?;
            let rate = fresh(&dir, "commits.db")?.store().raw_commit_baseline(commits)?;
            println!("{}", json!({"bench": "commits", "commits": commits, "durable_commits_per_s": rate.round()}));
            Ok(())
        }
        BenchCommand::Sentences { sets } => crate::bench_sentence::run(sets),
        BenchCommand::Identity { intakes, seed } => crate::bench_identity::run(intakes, seed),
        BenchCommand::Queries { runs, days_ago, facility } => {
            let db = std::env::var("CUSTODIA_DB").unwrap_or_else(|_| "sqlite://custodia.db".into());
            bench_queries(&db, runs, days_ago, facility)
        }
    }
}

fn bench_admit(people: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let now = chrono::Utc::now();
    let template: serde_json::Value = json!({
        "facility": "BENCH",
        "identity": {"given_names": "Ana María", "first_surname": "López", "second_surname": "Díaz",
                     "date_of_birth": "1990-01-01", "sex": "female", "nationality": "SV",
                     "documents": [{"kind": "dui", "number": "00000000-0", "issuing_country": "SV"}]},
        "legal_basis": {"kind": "remand_order", "issuing_authority": "Juzgado", "reference": "X", "date": "2026-01-01"},
        "arrested_at": "2026-01-01T00:00:00Z", "arrest_place": "San Salvador"
    });
    let requests: Vec<AdmitRequest> = (0..people)
        .map(|i| {
            let mut v = template.clone();
            v["identity"]["documents"][0]["number"] = json!(format!("{i:08}-0"));
            v["legal_basis"]["reference"] = json!(format!("R-{i}"));
            serde_json::from_value(v)
        })
        .collect::<Result<_, _>>()?;
    // The raw loop writes rows of the same size: the same booking details and audit payload text.
    let a = &requests[0].admission;
    let details = json!({"injuries": a.injuries, "complaints": a.complaints, "property": a.property,
        "next_of_kin": a.next_of_kin, "emergency_contact": a.emergency_contact, "dependants": a.dependants})
    .to_string();
    let payload = serde_json::to_string(&requests[0])?;
    let raw = fresh(&dir, "raw.db")?;
    let started = Clock::now();
    raw.store().raw_insert_baseline(people, &details, &payload)?;
    let raw_seconds = started.elapsed().as_secs_f64();

    let service = fresh(&dir, "admit.db")?;
    let ctx = Context::new("bench", now);
    let started = Clock::now();
    service.bulk(|tx| {
        for r in &requests {
            admit_in(tx, &ctx, r)?;
        }
        Ok(())
    })?;
    let admit_seconds = started.elapsed().as_secs_f64();
    let check = service.store().read()?.counts()?;
    anyhow::ensure!(check.people == people, "expected {people} people, found {}", check.people);
    println!(
        "{}",
        json!({
            "bench": "admit",
            "people": people,
            "bulk_admissions_per_s": (people as f64 / admit_seconds).round(),
            "raw_loop_admissions_per_s": (people as f64 / raw_seconds).round(),
            "bulk_time_over_raw_time": ((admit_seconds / raw_seconds) * 100.0).round() / 100.0,
        })
    );
    Ok(())
}

fn bench_queries(db: &str, runs: usize, days_ago: i64, chosen: Option<String>) -> anyhow::Result<()> {
    let service = Service::new(service::open_database(db, false)?);
    let now = chrono::Utc::now();
    let past = now - chrono::Duration::days(days_ago);
    let ago = format!("{days_ago}_days_ago_ms");
    let facilities = service.store().read()?.facilities()?;
    let report = service.occupancy(now, Detail::Facility)?;
    // A typical facility (median population) and the largest.
    let mut by_population: Vec<_> = report.facilities.iter().map(|f| (f.measure.population, f.code.clone())).collect();
    by_population.sort();
    let typical = by_population[by_population.len() / 2].1.clone();
    let largest = by_population.last().map(|f| f.1.clone()).unwrap_or_default();
    let someone = service.occupants(&typical, None, None, now)?.first().map(|o| o.number.clone());
    let mut line = json!({"bench": "queries", "facilities": facilities.len(), "population": report.total.population});
    line["occupancy_report_now_ms"] =
        json!(time_ms(runs, || service.occupancy(now, Detail::Facility).map(|_| ()).map_err(Into::into))?);
    line[format!("occupancy_report_{ago}")] =
        json!(time_ms(runs, || service.occupancy(past, Detail::Facility).map(|_| ()).map_err(Into::into))?);
    line["occupancy_report_cells_now_ms"] =
        json!(time_ms(runs, || service.occupancy(now, Detail::Cell).map(|_| ()).map_err(Into::into))?);
    if let Some(person) = someone {
        line["where_was_person_now_ms"] =
            json!(time_ms(runs, || service.whereabouts(&person, now).map(|_| ()).map_err(Into::into))?);
        line[format!("where_was_person_{ago}")] =
            json!(time_ms(runs, || service.whereabouts(&person, past).map(|_| ()).map_err(Into::into))?);
    }
    let mut facilities_timed = vec![("typical", typical), ("largest", largest.clone())];
    facilities_timed.extend(chosen.map(|code| ("chosen", code)));
    for (label, code) in &facilities_timed {
        let count = service.occupants(code, None, None, now)?.len();
        line[format!("who_in_{label}_facility")] = json!({"code": code, "people": count});
        line[format!("who_in_{label}_facility_now_ms")] =
            json!(time_ms(runs, || service.occupants(code, None, None, now).map(|_| ()).map_err(Into::into))?);
        line[format!("who_in_{label}_facility_{ago}")] =
            json!(time_ms(runs, || service.occupants(code, None, None, past).map(|_| ()).map_err(Into::into))?);
    }
    // What a roll count of the largest facility computes when it starts.
    line["expected_counts_largest_facility_ms"] =
        json!(time_ms(runs, || service.expected_counts(&largest, now).map(|_| ()).map_err(Into::into))?);
    // Every open alert of the whole estate, as the dashboard and `custodia alerts` ask for them.
    line["alerts"] = json!(service.alerts(now, |_| true)?.len());
    line["alerts_ms"] = json!(time_ms(runs, || service.alerts(now, |_| true).map(|_| ()).map_err(Into::into))?);
    let started = Clock::now();
    let verified = service.verify_audit(&mut |_, _| {})?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        verified.broken.is_none() && verified.projection_problems.is_empty(),
        "the audit chain does not verify"
    );
    line["audit_verify_events"] = json!(verified.events);
    line["audit_verify_rows"] = json!(verified.rows);
    line["audit_verify_seconds"] = json!((seconds * 100.0).round() / 100.0);
    line["audit_verify_events_per_s"] = json!((verified.events as f64 / seconds).round());
    println!("{line}");
    Ok(())
}
