//! `custodia bench identity`: identity resolution on an existing database (the national demo).
//! Real people are sampled and their identities perturbed as intake officers write them (second
//! surname dropped, accents stripped, spelling variants, names reordered, day and month swapped,
//! a digit slipped, a document with another name), with some new people mixed in. Candidates are
//! found one intake at a time (p50 and p99) and for all of them as one batch; recall is the share
//! of perturbed people found. Prints one JSON line; reproduced by docs/BENCHMARKS.md.

use std::time::Instant as Clock;

use chrono::{Datelike, NaiveDate};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use domain::person::{Identity, IdentityDocument, PersonName};
use service::Service;
use store::{Store, Tx};

/// The ways an intake differs from the record, in the order they are dealt out.
const KINDS: [&str; 8] = [
    "no_second_surname",
    "accents_stripped",
    "spelling_variants",
    "names_reordered",
    "day_month_swapped",
    "one_digit_off",
    "document_only",
    "new_person",
];

/// Candidates asked for per intake.
const LIMIT: u32 = 10;

/// Names of the people who are not on record.
const NEW_GIVEN: &[&str] = &["Brenda", "Xochitl", "Yanira", "Kevin", "Wilber", "Brayan", "Dayana", "Elmer"];
const NEW_SURNAMES: &[&str] = &["Zelaya", "Villatoro", "Monterrosa", "Bonilla", "Escobar", "Amaya", "Lemus", "Funes"];

/// Run the benchmark against the database named by `--db` or `CUSTODIA_DB`.
pub fn run(intakes: usize, seed: u64) -> anyhow::Result<()> {
    // `bench` receives no global options; read `--db` (or `CUSTODIA_DB`) as the command line gave it.
    let db = <crate::Cli as clap::Parser>::parse().db;
    let service = Service::new(service::open_database(&db, false)?);
    let people = service.counts()?.people;
    anyhow::ensure!(people > 0, "the database {db} holds no people: build the demo first");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cases: Vec<(&str, Option<String>, Identity)> = Vec::with_capacity(intakes);
    {
        let mut tx = service.store().read()?;
        while cases.len() < intakes {
            let kind = KINDS[cases.len() % KINDS.len()];
            if kind == "new_person" {
                cases.push((kind, None, new_person(&mut rng)));
                continue;
            }
            let Some(person) = tx.person(rng.random_range(1..=people as i64))? else { continue };
            let identity = perturb(kind, &person.identity, &mut rng);
            cases.push((kind, Some(person.number), identity));
        }
    }

    let mut latencies = Vec::with_capacity(intakes);
    let mut answers = Vec::with_capacity(intakes);
    for (_, _, identity) in &cases {
        let started = Clock::now();
        let found = service.identity_candidates(identity, Some(LIMIT), |_| true)?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        answers.push(found);
    }
    let identities: Vec<Identity> = cases.iter().map(|c| c.2.clone()).collect();
    let started = Clock::now();
    let batch = service.identity_candidates_batch(&identities, Some(LIMIT), |_| true)?;
    let batch_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(batch == answers, "the batch answered differently from the intakes one by one");

    let mut by_kind = serde_json::Map::new();
    let (mut existing, mut found, mut first, mut strangers, mut stranger_hits) = (0, 0, 0, 0, 0);
    for kind in KINDS {
        let (mut n, mut hit) = (0, 0);
        for ((_, number, _), answer) in cases.iter().zip(&answers).filter(|((k, _, _), _)| *k == kind) {
            n += 1;
            match number {
                Some(number) => {
                    let position = answer.iter().position(|c| &c.number == number);
                    hit += usize::from(position.is_some());
                    first += usize::from(position == Some(0));
                }
                None => hit += usize::from(!answer.is_empty()),
            }
        }
        if kind == "new_person" {
            (strangers, stranger_hits) = (n, hit);
        } else {
            existing += n;
            found += hit;
            by_kind.insert(kind.to_string(), json!(ratio(hit, n)));
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let mean_candidates = answers.iter().map(Vec::len).sum::<usize>() as f64 / answers.len().max(1) as f64;
    let fields = [
        ("bench", json!("identity")),
        ("people", json!(people)),
        ("intakes", json!(intakes)),
        ("perturbed", json!(existing)),
        ("new_people", json!(strangers)),
        ("one_by_one_p50_ms", json!(round(at(0.50), 3))),
        ("one_by_one_p99_ms", json!(round(at(0.99), 3))),
        ("one_by_one_max_ms", json!(round(at(1.0), 3))),
        ("batch_seconds", json!(round(batch_seconds, 3))),
        ("recall", json!(ratio(found, existing))),
        ("found_first", json!(ratio(first, existing))),
        ("recall_by_perturbation", serde_json::Value::Object(by_kind)),
        ("new_people_with_candidates", json!(ratio(stranger_hits, strangers))),
        ("mean_candidates", json!(round(mean_candidates, 2))),
    ];
    let fields: Vec<String> = fields.iter().map(|(key, value)| format!("\"{key}\":{value}")).collect();
    println!("{{{}}}", fields.join(","));
    Ok(())
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

fn ratio(part: usize, whole: usize) -> f64 {
    round(part as f64 / whole.max(1) as f64, 4)
}

fn fold(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'á' => 'a',
            'é' => 'e',
            'í' => 'i',
            'ó' => 'o',
            'ú' | 'ü' => 'u',
            'ñ' => 'n',
            'Á' => 'A',
            'É' => 'E',
            'Í' => 'I',
            'Ó' => 'O',
            'Ú' | 'Ü' => 'U',
            'Ñ' => 'N',
            other => other,
        })
        .collect()
}

/// Respell one word with a variant that sounds the same, as an officer might write it.
fn respell(word: &str) -> String {
    let lower = fold(word).to_lowercase();
    const RULES: [(&str, &str); 12] = [
        ("v", "b"),
        ("b", "v"),
        ("z", "s"),
        ("ll", "y"),
        ("ce", "se"),
        ("ci", "si"),
        ("qu", "k"),
        ("ge", "je"),
        ("j", "x"),
        ("y", "i"),
        ("ph", "f"),
        ("s", "z"),
    ];
    let respelt = match RULES.iter().find(|(from, _)| lower.contains(from)) {
        Some((from, to)) => lower.replacen(from, to, 1),
        None if lower.starts_with('h') => lower[1..].to_string(),
        None if lower.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("h{lower}"),
        None => lower.replacen('r', "rr", 1),
    };
    let mut chars = respelt.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn respell_all(text: &str) -> String {
    text.split_whitespace().map(respell).collect::<Vec<_>>().join(" ")
}

fn date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

/// The date with one digit of the day changed (the last, or the first when that is impossible).
fn slip(born: NaiveDate, rng: &mut ChaCha8Rng) -> NaiveDate {
    let day = born.day();
    let mut options: Vec<NaiveDate> =
        (0..10).filter_map(|d| date(born.year(), born.month(), day - day % 10 + d)).filter(|d| *d != born).collect();
    if options.is_empty() {
        options =
            (0..4).filter_map(|t| date(born.year(), born.month(), t * 10 + day % 10)).filter(|d| *d != born).collect();
    }
    *options.choose(rng).unwrap_or(&born)
}

fn perturb(kind: &str, on_record: &Identity, rng: &mut ChaCha8Rng) -> Identity {
    let mut intake = on_record.clone();
    let name = &mut intake.name;
    match kind {
        "no_second_surname" => {
            let dropped = name.second_surname.take();
            // Without a second surname to drop, the accents go instead.
            if dropped.is_none() {
                name.first_surname = part(fold(&name.first_surname));
            }
        }
        "accents_stripped" => {
            *name = PersonName {
                given_names: part(fold(&name.given_names).to_uppercase()),
                first_surname: part(fold(&name.first_surname).to_uppercase()),
                second_surname: name.second_surname.as_deref().map(|s| part(fold(s).to_uppercase())),
            }
        }
        "spelling_variants" => {
            name.given_names = part(respell_all(&name.given_names));
            name.first_surname = part(respell_all(&name.first_surname));
        }
        "names_reordered" => {
            name.given_names = part(name.given_names.split_whitespace().rev().collect::<Vec<_>>().join(" "));
            if let Some(second) = name.second_surname.take() {
                name.second_surname = Some(std::mem::replace(&mut name.first_surname, second));
            } else {
                // Surname first, as on some foreign documents.
                std::mem::swap(&mut name.given_names, &mut name.first_surname);
            }
        }
        "day_month_swapped" => {
            let born = intake.date_of_birth;
            intake.date_of_birth =
                date(born.year(), born.day(), born.month()).filter(|d| *d != born).unwrap_or_else(|| slip(born, rng));
        }
        "one_digit_off" => intake.date_of_birth = slip(intake.date_of_birth, rng),
        "document_only" => {
            *name = PersonName {
                given_names: part(*NEW_GIVEN.choose(rng).expect("names")),
                first_surname: part(*NEW_SURNAMES.choose(rng).expect("names")),
                second_surname: None,
            };
            intake.date_of_birth = random_birth(rng);
        }
        _ => {}
    }
    if kind != "document_only" {
        intake.documents.clear();
    }
    intake
}

/// A name part the benchmark makes from valid names (folding and respelling keep them valid).
fn part(text: impl Into<String>) -> domain::text::NamePart {
    domain::text::NamePart::try_from(text.into()).expect("benchmark names are valid")
}

fn random_birth(rng: &mut ChaCha8Rng) -> NaiveDate {
    NaiveDate::from_ymd_opt(1960, 1, 1).expect("valid") + chrono::Duration::days(rng.random_range(0..42 * 365))
}

fn new_person(rng: &mut ChaCha8Rng) -> Identity {
    Identity {
        name: PersonName {
            given_names: part(*NEW_GIVEN.choose(rng).expect("names")),
            first_surname: part(*NEW_SURNAMES.choose(rng).expect("names")),
            second_surname: Some(part(*NEW_SURNAMES.choose(rng).expect("names"))),
        },
        date_of_birth: random_birth(rng),
        sex: domain::person::Sex::Male,
        gender_identity: None,
        nationality: "SV".parse().unwrap(),
        // A foreign passport: no number of the demo's DUIs can match it by chance.
        documents: vec![IdentityDocument {
            kind: "passport".parse().unwrap(),
            number: format!("P{:08}", rng.random_range(0..100_000_000u32)).parse().expect("a valid document number"),
            issuing_country: "GT".parse().unwrap(),
        }],
    }
}
