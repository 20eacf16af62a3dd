//! `custodia bench sentences`: release-date calculations per second over varied, deterministic
//! sentence sets (issue 5).

use std::hint::black_box;
use std::time::Instant as Clock;

use chrono::{Datelike, Days, NaiveDate};
use serde_json::json;

use domain::sentence::{calculate, RemandPeriod, Sentence, SentenceInput};

/// splitmix64: small, fast and the same everywhere, so the sets do not depend on a crate's version.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One person's sentences: one to four concurrent chains of one to six sentences each (a few
/// chains of 12), lengths in years, months and days (many from a month's end or 29 February),
/// and up to three remand periods, some overlapping, counted toward one or two sentences.
fn sentence_set(mix: &mut Mix) -> SentenceInput {
    let base = NaiveDate::from_ymd_opt(2018, 1, 1).expect("a date");
    let chains = 1 + mix.below(4) as usize;
    let mut sentences = Vec::new();
    for c in 0..chains {
        let length = if mix.below(50) == 0 { 12 } else { 1 + mix.below(6) as usize };
        let mut start = base + Days::new(mix.below(2500));
        match mix.below(6) {
            0 => start = start.with_day(1).and_then(|d| d.pred_opt()).unwrap_or(start), // a month's end
            1 => start = NaiveDate::from_ymd_opt(2020 + 4 * (c as i32 % 2), 2, 29).unwrap_or(start),
            _ => {}
        }
        for k in 0..length {
            let (years, months, days) = match mix.below(4) {
                0 => (1 + mix.below(10) as i64, 0, 0),
                1 => (0, 1 + mix.below(30) as i64, 0),
                2 => (0, 0, 1 + mix.below(400) as i64),
                _ => (mix.below(5) as i64, mix.below(12) as i64, 1 + mix.below(30) as i64),
            };
            let id = format!("S{c}-{k}");
            let follows = (k > 0).then(|| format!("S{c}-{}", k - 1));
            sentences.push(Sentence {
                id,
                start: follows.is_none().then_some(start),
                consecutive_to: follows,
                years,
                months,
                days,
            });
        }
    }
    let mut remand = Vec::new();
    let mut from = base + Days::new(mix.below(2000));
    for _ in 0..mix.below(4) {
        let to = from + Days::new(mix.below(200));
        let mut counts_toward = vec![sentences[mix.below(sentences.len() as u64) as usize].id.clone()];
        if mix.below(3) == 0 {
            counts_toward.push(sentences[mix.below(sentences.len() as u64) as usize].id.clone());
        }
        remand.push(RemandPeriod { from, to, counts_toward });
        // The next period may overlap this one.
        from = to - Days::new(mix.below(30).min((to - from).num_days() as u64)) + Days::new(mix.below(60));
    }
    SentenceInput { sentences, remand }
}

/// Generate `sets` sentence sets, then time `calculate` over all of them, and once more with the
/// JSON answer (trace included) written out; prints one JSON line.
pub fn run(sets: usize) -> anyhow::Result<()> {
    let mut mix = Mix(5);
    let inputs: Vec<SentenceInput> = (0..sets).map(|_| sentence_set(&mut mix)).collect();
    let sentences: usize = inputs.iter().map(|i| i.sentences.len()).sum();

    let started = Clock::now();
    let mut checksum = 0i64;
    for input in &inputs {
        let calculation =
            calculate(black_box(input)).map_err(|e| anyhow::anyhow!("generated set refused: {}", e[0]))?;
        checksum = checksum.wrapping_add(i64::from(calculation.release_date().num_days_from_ce()));
    }
    let seconds = started.elapsed().as_secs_f64();
    black_box(checksum);

    let started = Clock::now();
    let mut buffer = Vec::with_capacity(4096);
    let mut bytes = 0usize;
    for input in &inputs {
        let calculation =
            calculate(black_box(input)).map_err(|e| anyhow::anyhow!("generated set refused: {}", e[0]))?;
        buffer.clear();
        serde_json::to_writer(&mut buffer, &calculation)?;
        bytes += buffer.len();
    }
    let with_json_seconds = started.elapsed().as_secs_f64();
    black_box(bytes);

    println!(
        "{}",
        json!({
            "bench": "sentences",
            "sets": sets,
            "sentences": sentences,
            "sets_per_s": (sets as f64 / seconds.max(1e-9)).round(),
            "with_json_and_trace_sets_per_s": (sets as f64 / with_json_seconds.max(1e-9)).round(),
        })
    );
    Ok(())
}
