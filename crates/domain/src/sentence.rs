//! Release dates of sentences: each sentence's expiry from its start (or the day after the one it
//! is consecutive to) and its length in years, months and days, less the days held on remand that
//! count toward it; the release date is the latest expiry. Every step is explained in a trace.
//!
//! Calendar arithmetic: years, then months, then days are added in that order; a day that does not
//! exist in the month reached becomes that month's last day (29 February + 1 year = 28 February).
//! The expiry is the day before the date reached. Remand days are counted once each (the union of
//! the periods that count toward the sentence, both ends included) and never more than the
//! sentence's own length: a sentence served in full on remand expires the day before it starts.
//! A consecutive sentence starts the day after the expiry of the one it follows, after that one's
//! remand credit, so a whole chain moves with its first sentence and each length is counted again
//! from the new start.

use std::fmt::Write as _;

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::FieldError;

/// What a release-date calculation needs: the sentences and the time held on remand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SentenceInput {
    /// The sentences; concurrent unless one is consecutive to another.
    #[serde(default)]
    pub sentences: Vec<Sentence>,
    /// Periods held on remand and the sentences each counts toward.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remand: Vec<RemandPeriod>,
}

/// One sentence: an id, when it starts (a date, or consecutive to another sentence) and its length.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sentence {
    /// Name of the sentence within this calculation, for example the court's case number.
    pub id: String,
    /// First day of the sentence; absent when it is consecutive to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<NaiveDate>,
    /// The id of the sentence this one follows: it starts the day after that one's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_to: Option<String>,
    /// Years of the length (0 when absent).
    #[serde(default)]
    pub years: i64,
    /// Months of the length, added after the years (0 when absent).
    #[serde(default)]
    pub months: i64,
    /// Days of the length, added after the months (0 when absent).
    #[serde(default)]
    pub days: i64,
}

/// A period held on remand, both days included, and the sentences it counts toward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemandPeriod {
    /// First day held.
    pub from: NaiveDate,
    /// Last day held.
    pub to: NaiveDate,
    /// Ids of the sentences this time counts toward.
    pub counts_toward: Vec<String>,
}

/// The answer as the API and the command line give it: release date, expiry of each sentence by
/// id (in the order given), and the trace that explains them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SentenceReport {
    /// The day the person is due for release: the latest expiry.
    pub release_date: NaiveDate,
    /// Expiry of each sentence, by id.
    pub expiry: std::collections::BTreeMap<String, NaiveDate>,
    /// How each date was reached, in plain words.
    pub trace: Vec<String>,
}

/// What one sentence came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome<'a> {
    /// The sentence's id.
    pub id: &'a str,
    /// The sentence it follows, if consecutive.
    pub consecutive_to: Option<&'a str>,
    /// Its first day (for a consecutive sentence, the day after the one it follows expires).
    pub start: NaiveDate,
    /// The expiry before remand credit: start + length − 1 day.
    pub full_term_end: NaiveDate,
    /// Distinct days held on remand that count toward it.
    pub remand_days: i64,
    /// Days taken off (the remand days, at most the sentence's length).
    pub credited_days: i64,
    /// The expiry after remand credit.
    pub expiry: NaiveDate,
}

/// No predecessor.
const NONE: u32 = u32::MAX;
/// The latest date the calculation keeps (what ISO 8601 dates can say without a sign).
const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => panic!("9999-12-31 is a date"),
};

#[derive(Debug, Clone, Copy)]
struct Computed {
    pred: u32,
    start: NaiveDate,
    /// Dates reached after adding the years, the months and the days.
    steps: [NaiveDate; 3],
    full_term_end: NaiveDate,
    remand_days: i64,
    credited_days: i64,
    expiry: NaiveDate,
    /// Range of this sentence's merged remand periods in `Calculation::spans`.
    spans: (u32, u32),
}

/// A completed calculation; the trace is written only when asked for.
#[derive(Debug, Clone)]
pub struct Calculation<'a> {
    input: &'a SentenceInput,
    /// By input position.
    computed: Vec<Computed>,
    /// Input positions in the order computed: each sentence after the one it follows.
    order: Vec<u32>,
    /// Merged remand periods of every sentence, each sentence's together and sorted.
    spans: Vec<(NaiveDate, NaiveDate)>,
    release_date: NaiveDate,
}

/// Compute every sentence's expiry and the release date, or list every wrong field.
pub fn calculate(input: &SentenceInput) -> Result<Calculation<'_>, Vec<FieldError>> {
    let sentences = &input.sentences;
    let n = sentences.len();
    let mut errors = Vec::new();
    if n == 0 {
        errors.push(FieldError::new("sentences", "must list at least one sentence"));
    }
    if n >= NONE as usize {
        errors.push(FieldError::new("sentences", "lists too many sentences"));
        return Err(errors);
    }

    // Ids sorted (ties by position), so the first sentence of an id is found by binary search.
    let mut by_id: Vec<(&str, u32)> = sentences.iter().enumerate().map(|(i, s)| (s.id.as_str(), i as u32)).collect();
    by_id.sort_unstable();
    let lookup = |id: &str| -> Option<u32> {
        let at = by_id.partition_point(|(k, _)| *k < id);
        by_id.get(at).filter(|(k, _)| *k == id).map(|(_, i)| *i)
    };

    let mut preds: Vec<u32> = Vec::with_capacity(n);
    for (i, s) in sentences.iter().enumerate() {
        if s.id.is_empty() {
            errors.push(FieldError::new(format!("sentences[{i}].id"), "must not be empty"));
        } else if let Some(first) = lookup(&s.id).filter(|first| *first as usize != i) {
            errors.push(FieldError::new(
                format!("sentences[{i}].id"),
                format!("`{}` is also the id of sentences[{first}]", s.id),
            ));
        }
        let mut pred = NONE;
        match (&s.start, &s.consecutive_to) {
            (Some(_), Some(_)) => errors.push(FieldError::new(
                format!("sentences[{i}].start"),
                "give either start or consecutive_to, not both: a consecutive sentence starts the day after \
                 the one it follows ends",
            )),
            (None, None) => errors.push(FieldError::new(
                format!("sentences[{i}].start"),
                "is needed, or consecutive_to naming the sentence this one follows",
            )),
            (Some(start), None) => {
                if !in_calendar(*start) {
                    errors.push(FieldError::new(format!("sentences[{i}].start"), "must be in the years 1 to 9999"));
                }
            }
            (None, Some(other)) => match lookup(other) {
                Some(p) => pred = p,
                None => errors.push(FieldError::new(
                    format!("sentences[{i}].consecutive_to"),
                    format!("no sentence has the id `{other}`"),
                )),
            },
        }
        preds.push(pred);
        let mut negative = false;
        for (name, value) in [("years", s.years), ("months", s.months), ("days", s.days)] {
            if value < 0 {
                negative = true;
                errors.push(FieldError::new(format!("sentences[{i}].{name}"), "must not be negative"));
            }
        }
        if !negative && s.years == 0 && s.months == 0 && s.days == 0 {
            errors.push(FieldError::new(format!("sentences[{i}]"), "has no length: years, months and days are all 0"));
        }
    }

    // Each sentence follows at most one other, so a walk up its predecessors either reaches a
    // sentence with a start date, one already placed, or goes round a circle.
    let order = order_or_cycles(&preds, sentences, &mut errors);

    for (r, period) in input.remand.iter().enumerate() {
        for (name, day) in [("from", period.from), ("to", period.to)] {
            if !in_calendar(day) {
                errors.push(FieldError::new(format!("remand[{r}].{name}"), "must be in the years 1 to 9999"));
            }
        }
        if period.to < period.from {
            errors.push(FieldError::new(
                format!("remand[{r}].to"),
                format!("ends on {}, before the period starts on {}", period.to, period.from),
            ));
        }
        if period.counts_toward.is_empty() {
            errors.push(FieldError::new(format!("remand[{r}].counts_toward"), "must name at least one sentence"));
        }
        for (k, id) in period.counts_toward.iter().enumerate() {
            if lookup(id).is_none() {
                errors.push(FieldError::new(
                    format!("remand[{r}].counts_toward[{k}]"),
                    format!("no sentence has the id `{id}`"),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // Remand periods per sentence, merged (overlapping or touching periods become one).
    let mut credits: Vec<(u32, NaiveDate, NaiveDate)> = Vec::new();
    for period in &input.remand {
        for id in &period.counts_toward {
            if let Some(i) = lookup(id) {
                credits.push((i, period.from, period.to));
            }
        }
    }
    credits.sort_unstable();
    let mut spans: Vec<(NaiveDate, NaiveDate)> = Vec::with_capacity(credits.len());
    // For each sentence: (first span, end of spans, distinct days).
    let mut remand_of = |i: u32, credits: &[(u32, NaiveDate, NaiveDate)], cursor: &mut usize| -> (u32, u32, i64) {
        let first = spans.len() as u32;
        let mut days = 0;
        while let Some(&(s, from, to)) = credits.get(*cursor) {
            if s != i {
                break;
            }
            *cursor += 1;
            let touches = spans.len() as u32 > first && spans.last().is_some_and(|l| from <= l.1 + Days::new(1));
            match spans.last_mut() {
                Some(last) if touches => {
                    if to > last.1 {
                        days += (to - last.1).num_days();
                        last.1 = to;
                    }
                }
                _ => {
                    days += (to - from).num_days() + 1;
                    spans.push((from, to));
                }
            }
        }
        (first, spans.len() as u32, days)
    };

    let mut computed: Vec<Computed> = Vec::with_capacity(n);
    let mut cursor = 0;
    for (i, pred) in preds.iter().enumerate() {
        let (first, end, days) = remand_of(i as u32, &credits, &mut cursor);
        let epoch = NaiveDate::MIN;
        computed.push(Computed {
            pred: *pred,
            start: epoch,
            steps: [epoch; 3],
            full_term_end: epoch,
            remand_days: days,
            credited_days: 0,
            expiry: epoch,
            spans: (first, end),
        });
    }

    let mut release_date = NaiveDate::MIN;
    for &i in &order {
        let i = i as usize;
        let s = &sentences[i];
        let c = computed[i];
        let beyond =
            || vec![FieldError::new(format!("sentences[{i}]"), "ends after 9999-12-31, beyond the dates kept")];
        let start = match s.start {
            Some(start) => start,
            None => computed[c.pred as usize].expiry.succ_opt().ok_or_else(beyond)?,
        };
        let months = |n: i64| u32::try_from(n).ok().map(Months::new);
        let after_years = months(s.years.saturating_mul(12)).and_then(|m| start.checked_add_months(m));
        let after_months = after_years.zip(months(s.months)).and_then(|(d, m)| d.checked_add_months(m));
        let after_days =
            after_months.zip(u64::try_from(s.days).ok()).and_then(|(d, n)| d.checked_add_days(Days::new(n)));
        let after_days = after_days.filter(|d| *d <= LAST_DAY).ok_or_else(beyond)?;
        let (after_years, after_months) = (after_years.unwrap_or(start), after_months.unwrap_or(start));
        if start > LAST_DAY || after_years > LAST_DAY || after_months > LAST_DAY {
            return Err(beyond());
        }
        let full_term_end = after_days.pred_opt().ok_or_else(beyond)?;
        let length = (full_term_end - start).num_days() + 1;
        let credited_days = c.remand_days.min(length);
        // At most `length` days back from the end lands on the day before the start, which exists
        // (starts are in year 1 or later).
        let expiry = full_term_end - Days::new(credited_days as u64);
        release_date = release_date.max(expiry);
        computed[i] = Computed {
            start,
            steps: [after_years, after_months, after_days],
            full_term_end,
            credited_days,
            expiry,
            ..c
        };
    }
    Ok(Calculation { input, computed, order, spans, release_date })
}

fn in_calendar(day: NaiveDate) -> bool {
    (1..=9999).contains(&day.year())
}

/// Positions in an order where each sentence comes after the one it follows (otherwise in the
/// order given); circles of consecutive sentences are reported instead, each once, on the sentence
/// of the circle given first.
fn order_or_cycles(preds: &[u32], sentences: &[Sentence], errors: &mut Vec<FieldError>) -> Vec<u32> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const PLACED: u8 = 2;
    let n = preds.len();
    let mut state = vec![NEW; n];
    let mut order = Vec::with_capacity(n);
    let mut path: Vec<u32> = Vec::new();
    let mut cycles: Vec<(u32, FieldError)> = Vec::new();
    for i in 0..n {
        let mut at = i as u32;
        while at != NONE && state[at as usize] == NEW {
            state[at as usize] = ON_PATH;
            path.push(at);
            at = preds[at as usize];
        }
        if at != NONE && state[at as usize] == ON_PATH {
            let from = path.iter().position(|p| *p == at).unwrap_or(0);
            cycles.push(cycle_error(&path[from..], sentences));
            for p in path.drain(from..) {
                state[p as usize] = PLACED;
            }
        }
        // The rest of the path hangs from a placed sentence or a start date: place it root first.
        while let Some(p) = path.pop() {
            if state[p as usize] == ON_PATH {
                state[p as usize] = PLACED;
                order.push(p);
            }
        }
    }
    if !cycles.is_empty() {
        cycles.sort_by_key(|(first, _)| *first);
        errors.extend(cycles.into_iter().map(|(_, e)| e));
    }
    order
}

/// The error for a circle of sentences, `members` in the order walked (each follows the next).
fn cycle_error(members: &[u32], sentences: &[Sentence]) -> (u32, FieldError) {
    let lowest = members.iter().enumerate().min_by_key(|(_, m)| **m).map(|(k, _)| k).unwrap_or(0);
    let first = members[lowest];
    let id = |k: usize| sentences[members[(lowest + k) % members.len()] as usize].id.as_str();
    let field = format!("sentences[{first}].consecutive_to");
    if members.len() == 1 {
        return (first, FieldError::new(field, format!("{} cannot be consecutive to itself", id(0))));
    }
    let mut problem = "circular: ".to_string();
    for k in 0..members.len() {
        let sep = if k == 0 { "" } else { ", " };
        let _ = write!(problem, "{sep}{} follows {}", id(k), id(k + 1));
    }
    problem.push_str("; none of them can start");
    (first, FieldError::new(field, problem))
}

impl<'a> Calculation<'a> {
    /// The day the person is due for release: the latest expiry.
    pub fn release_date(&self) -> NaiveDate {
        self.release_date
    }

    /// The expiry of the sentence with this id.
    pub fn expiry(&self, id: &str) -> Option<NaiveDate> {
        self.outcomes().find(|o| o.id == id).map(|o| o.expiry)
    }

    /// What each sentence came to, in the order given.
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome<'a>> + '_ {
        (0..self.computed.len()).map(|i| self.outcome(i))
    }

    fn outcome(&self, i: usize) -> Outcome<'a> {
        let c = &self.computed[i];
        let sentences = &self.input.sentences;
        Outcome {
            id: &sentences[i].id,
            consecutive_to: (c.pred != NONE).then(|| sentences[c.pred as usize].id.as_str()),
            start: c.start,
            full_term_end: c.full_term_end,
            remand_days: c.remand_days,
            credited_days: c.credited_days,
            expiry: c.expiry,
        }
    }

    /// The explanation, one line per step a records officer would check.
    pub fn trace(&self) -> Vec<String> {
        let mut lines = Vec::with_capacity(self.order.len() + 2);
        for &i in &self.order {
            let i = i as usize;
            lines.push(self.term_line(i));
            if self.computed[i].spans.1 > self.computed[i].spans.0 {
                lines.push(self.remand_line(i));
            }
        }
        lines.push(self.release_line());
        lines
    }

    /// `A: starts 2024-03-01; + 2 years = 2026-03-01; − 1 day = 2026-02-28`.
    fn term_line(&self, i: usize) -> String {
        let s = &self.input.sentences[i];
        let c = &self.computed[i];
        let mut line = String::with_capacity(96);
        if c.pred == NONE {
            let _ = write!(line, "{}: starts {}", s.id, c.start);
        } else {
            let _ = write!(
                line,
                "{}: consecutive to {}, starts {}",
                s.id, self.input.sentences[c.pred as usize].id, c.start
            );
        }
        let mut before = c.start;
        for (k, (count, unit)) in [(s.years, "year"), (s.months, "month"), (s.days, "day")].into_iter().enumerate() {
            let reached = c.steps[k];
            if count == 0 {
                continue;
            }
            let plural = if count == 1 { "" } else { "s" };
            let _ = write!(line, "; + {count} {unit}{plural} = {reached}");
            if k < 2 && reached.day() != before.day() {
                let _ = write!(
                    line,
                    " ({} {} has no {})",
                    MONTHS[reached.month0() as usize],
                    reached.year(),
                    ordinal(before.day())
                );
            }
            before = reached;
        }
        let _ = write!(line, "; − 1 day = {}", c.full_term_end);
        line
    }

    /// `A: 51 days on remand (2024-01-10 to 2024-02-29) → expires 2026-01-08`.
    fn remand_line(&self, i: usize) -> String {
        let c = &self.computed[i];
        let mut line = String::with_capacity(96);
        let plural = if c.remand_days == 1 { "" } else { "s" };
        let _ = write!(line, "{}: {} day{plural} on remand (", self.input.sentences[i].id, c.remand_days);
        for (k, (from, to)) in self.spans[c.spans.0 as usize..c.spans.1 as usize].iter().enumerate() {
            let sep = if k == 0 { "" } else { ", " };
            let _ = write!(line, "{sep}{from} to {to}");
        }
        line.push(')');
        if c.credited_days < c.remand_days {
            let _ = write!(line, ", more than the sentence's {} days: served in full on remand", c.credited_days);
        }
        let _ = write!(line, " → expires {}", c.expiry);
        line
    }

    /// `Release date 2026-07-08: the latest expiry (B)`.
    fn release_line(&self) -> String {
        let mut line = format!("Release date {}: the latest expiry (", self.release_date);
        let latest = self.outcomes().filter(|o| o.expiry == self.release_date);
        for (k, o) in latest.enumerate() {
            if k > 0 {
                line.push_str(", ");
            }
            line.push_str(o.id);
        }
        line.push(')');
        line
    }

    /// The answer as an owned value (expiries by id).
    pub fn report(&self) -> SentenceReport {
        SentenceReport {
            release_date: self.release_date,
            expiry: self.outcomes().map(|o| (o.id.to_string(), o.expiry)).collect(),
            trace: self.trace(),
        }
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `29th`, `30th`, `31st`: the only days a month can lack.
fn ordinal(day: u32) -> String {
    let suffix = match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{day}{suffix}")
}

/// `{"release_date": …, "expiry": {id: date, …} (in the order given), "trace": […]}`.
impl Serialize for Calculation<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Expiries<'c, 'a>(&'c Calculation<'a>);
        impl Serialize for Expiries<'_, '_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.outcomes().map(|o| (o.id, o.expiry)))
            }
        }
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("release_date", &self.release_date)?;
        map.serialize_entry("expiry", &Expiries(self))?;
        map.serialize_entry("trace", &self.trace())?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn input(json: serde_json::Value) -> SentenceInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_worked_example_gives_the_documented_answer() {
        let input = input(serde_json::json!({
            "sentences": [{"id": "A", "start": "2024-03-01", "years": 2, "months": 0, "days": 0},
                          {"id": "B", "months": 6, "consecutive_to": "A"}],
            "remand": [{"from": "2024-01-10", "to": "2024-02-29", "counts_toward": ["A"]}]
        }));
        let calculation = calculate(&input).unwrap();
        assert_eq!(calculation.release_date(), day("2026-07-08"));
        assert_eq!(calculation.expiry("A"), Some(day("2026-01-08")));
        assert_eq!(calculation.expiry("B"), Some(day("2026-07-08")));
        let json = serde_json::to_value(&calculation).unwrap();
        assert_eq!(
            json["trace"],
            serde_json::json!([
                "A: starts 2024-03-01; + 2 years = 2026-03-01; − 1 day = 2026-02-28",
                "A: 51 days on remand (2024-01-10 to 2024-02-29) → expires 2026-01-08",
                "B: consecutive to A, starts 2026-01-09; + 6 months = 2026-07-09; − 1 day = 2026-07-08",
                "Release date 2026-07-08: the latest expiry (B)"
            ])
        );
        assert_eq!(serde_json::to_value(calculation.report()).unwrap(), json);
    }

    #[test]
    fn a_missing_day_of_the_month_becomes_its_last_day() {
        let one = |start: &str, years, months| {
            let s = Sentence { id: "A".into(), start: Some(day(start)), years, months, ..Default::default() };
            let input = SentenceInput { sentences: vec![s], remand: vec![] };
            calculate(&input).unwrap().release_date()
        };
        assert_eq!(one("2024-02-29", 1, 0), day("2025-02-27"));
        assert_eq!(one("2024-01-31", 0, 1), day("2024-02-28"));
        // Years first, then months: 2025-02-28 + 1 month, not 2024-02-29 + 13 months.
        assert_eq!(one("2024-02-29", 1, 1), day("2025-03-27"));
    }

    #[test]
    fn a_long_chain_given_backwards_is_computed_in_order() {
        let mut sentences: Vec<Sentence> = (1..2000)
            .rev()
            .map(|k| Sentence {
                id: format!("S{k}"),
                consecutive_to: Some(format!("S{}", k - 1)),
                days: 1,
                ..Default::default()
            })
            .collect();
        sentences.push(Sentence { id: "S0".into(), start: Some(day("2024-01-01")), days: 1, ..Default::default() });
        let input = SentenceInput { sentences, remand: vec![] };
        let calculation = calculate(&input).unwrap();
        assert_eq!(calculation.release_date(), day("2024-01-01") + Days::new(1999));
        assert!(calculation.trace()[0].starts_with("S0: starts 2024-01-01"));
    }

    fn arb_input() -> impl Strategy<Value = SentenceInput> {
        let sentence = (0u32..3000, 0i64..4, 0i64..13, 0i64..40, any::<bool>(), any::<prop::sample::Index>());
        let remand = (0u32..3000, 0u32..200, prop::collection::vec(any::<prop::sample::Index>(), 1..3));
        (prop::collection::vec(sentence, 1..8), prop::collection::vec(remand, 0..4)).prop_map(|(raw, remand)| {
            let base = day("2020-01-01");
            let n = raw.len();
            let sentences = raw
                .iter()
                .enumerate()
                .map(|(i, (offset, years, months, days, consecutive, pick))| {
                    // Only earlier sentences may be followed, so there is no circle.
                    let follows = (*consecutive && i > 0).then(|| format!("S{}", pick.index(i)));
                    Sentence {
                        id: format!("S{i}"),
                        start: follows.is_none().then(|| base + Days::new(u64::from(*offset))),
                        consecutive_to: follows,
                        years: *years,
                        months: *months,
                        days: if years + months + days == 0 { 1 } else { *days },
                    }
                })
                .collect();
            let remand = remand
                .iter()
                .map(|(offset, len, picks)| RemandPeriod {
                    from: base + Days::new(u64::from(*offset)),
                    to: base + Days::new(u64::from(offset + len)),
                    counts_toward: picks.iter().map(|p| format!("S{}", p.index(n))).collect(),
                })
                .collect();
            SentenceInput { sentences, remand }
        })
    }

    proptest! {
        #[test]
        fn adding_remand_never_moves_the_release_later(
            input in arb_input(), offset in 0u64..3000, len in 0u64..400, pick in any::<prop::sample::Index>()
        ) {
            let before = calculate(&input).unwrap().release_date();
            let mut more = input.clone();
            let from = day("2020-01-01") + Days::new(offset);
            let target = more.sentences[pick.index(more.sentences.len())].id.clone();
            more.remand.push(RemandPeriod { from, to: from + Days::new(len), counts_toward: vec![target] });
            let after = calculate(&more).unwrap();
            prop_assert!(after.release_date() <= before);
            for (o, p) in calculate(&input).unwrap().outcomes().zip(after.outcomes()) {
                prop_assert!(p.expiry <= o.expiry, "{} moved later", o.id);
            }
        }

        #[test]
        fn a_consecutive_sentence_never_ends_before_the_one_it_follows(input in arb_input()) {
            let calculation = calculate(&input).unwrap();
            for o in calculation.outcomes() {
                if let Some(follows) = o.consecutive_to {
                    let before = calculation.expiry(follows).unwrap();
                    prop_assert_eq!(o.start, before.succ_opt().unwrap());
                    if o.remand_days == 0 {
                        prop_assert!(o.expiry > before, "{} ends before {}", o.id, follows);
                    }
                }
            }
        }

        #[test]
        fn the_release_date_is_the_latest_expiry(input in arb_input()) {
            let calculation = calculate(&input).unwrap();
            prop_assert!(calculation.outcomes().all(|o| o.expiry <= calculation.release_date()));
            prop_assert!(calculation.outcomes().any(|o| o.expiry == calculation.release_date()));
        }

        #[test]
        fn more_years_never_give_an_earlier_expiry(
            input in arb_input(), pick in any::<prop::sample::Index>(), extra in 1i64..5
        ) {
            let before = calculate(&input).unwrap();
            let mut longer = input.clone();
            let i = pick.index(longer.sentences.len());
            longer.sentences[i].years += extra;
            let after = calculate(&longer).unwrap();
            prop_assert!(after.outcomes().nth(i).unwrap().expiry >= before.outcomes().nth(i).unwrap().expiry);
            for (o, p) in before.outcomes().zip(after.outcomes()) {
                prop_assert!(p.expiry >= o.expiry, "{} ended earlier", o.id);
            }
            prop_assert!(after.release_date() >= before.release_date());
        }
    }
}
