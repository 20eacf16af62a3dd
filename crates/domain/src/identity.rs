//! Identity resolution at intake: how far an intake identity resembles a person on record, in
//! words, and the match keys that find the few people worth comparing among many.
//!
//! Names are compared word by word, accents, case and word order ignored, and by sound under the
//! spelling variants of Spanish and Central American usage ([`sound`]): ñ/n, ü/u, b/v, y/i/ll,
//! s/z and c before e or i, a silent h, k/c/qu, x/j, ph/f, th/t and doubled letters. Dates of
//! birth agree when equal, with day and month swapped, or one digit off. Documents agree when
//! type, number and issuing country are the same.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::person::{name_tokens, Identity, IdentityDocument, PersonName};

/// Words that join or introduce surnames ("de la Cruz", "Ortega y Gasset"): not compared.
const PARTICLES: &[&str] = &["de", "del", "la", "las", "los", "y", "e", "da", "das", "do", "dos", "van", "von"];

/// Candidates scoring below this are not worth an officer's time.
pub const LISTING_THRESHOLD: f64 = 0.5;

/// One word of a name: as written without accents and case, and how it sounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameWord {
    /// Lower case, accents removed: `hernandez`.
    pub plain: String,
    /// The sound key: `ernandes`.
    pub sound: String,
}

/// The comparable words of a name, by part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameWords {
    /// Words of the given names.
    pub given: Vec<NameWord>,
    /// Words of the first surname.
    pub first_surname: Vec<NameWord>,
    /// Words of the second surname (empty when there is none).
    pub second_surname: Vec<NameWord>,
}

fn words_of(text: &str) -> Vec<NameWord> {
    name_tokens(text)
        .into_iter()
        .filter(|w| !PARTICLES.contains(&w.as_str()))
        .map(|plain| NameWord { sound: sound(&plain), plain })
        .collect()
}

impl NameWords {
    /// The words of a name.
    pub fn of(name: &PersonName) -> Self {
        Self {
            given: words_of(&name.given_names),
            first_surname: words_of(&name.first_surname),
            second_surname: name.second_surname.as_deref().map(words_of).unwrap_or_default(),
        }
    }

    /// Every word, whatever its part.
    pub fn all(&self) -> impl Iterator<Item = &NameWord> {
        self.given.iter().chain(&self.first_surname).chain(&self.second_surname)
    }

    /// The words of both surnames.
    pub fn surnames(&self) -> impl Iterator<Item = &NameWord> {
        self.first_surname.iter().chain(&self.second_surname)
    }

    /// Distinct sound keys of every word, sorted.
    pub fn sounds(&self) -> Vec<&str> {
        let mut sounds: Vec<&str> = self.all().map(|w| w.sound.as_str()).collect();
        sounds.sort_unstable();
        sounds.dedup();
        sounds
    }

    fn plain_set(&self, skip_second: bool) -> Vec<&str> {
        let words = self.given.iter().chain(&self.first_surname);
        let mut set: Vec<&str> = if skip_second {
            words.map(|w| w.plain.as_str()).collect()
        } else {
            words.chain(&self.second_surname).map(|w| w.plain.as_str()).collect()
        };
        set.sort_unstable();
        set.dedup();
        set
    }

    fn sound_set(&self, skip_second: bool) -> Vec<&str> {
        let words = self.given.iter().chain(&self.first_surname);
        let mut set: Vec<&str> = if skip_second {
            words.map(|w| w.sound.as_str()).collect()
        } else {
            words.chain(&self.second_surname).map(|w| w.sound.as_str()).collect()
        };
        set.sort_unstable();
        set.dedup();
        set
    }
}

/// The sound key of one word (lower case, accents already folded as [`name_tokens`] does):
/// Spanish spelling variants that sound alike get the same key. `Hernández`, `Ernandes` and
/// `HERNANDEZ` are all `ernandes`; `Yesenia` and `Llesenia` are `iesenia`; `Ximena`, `Jimena`
/// and `Gimena` are `jimena`; `Chávez` and `Chaves` are `Cabes` (`C` stands for ch).
pub fn sound(word: &str) -> String {
    let w: Vec<char> = word.chars().collect();
    let at = |i: usize| w.get(i).copied().unwrap_or(' ');
    let front = |c: char| c == 'e' || c == 'i' || c == 'y';
    let mut out: Vec<char> = Vec::with_capacity(w.len());
    let mut i = 0;
    while i < w.len() {
        let (c, next) = (w[i], at(i + 1));
        let (key, used) = match c {
            'h' => (None, 1),
            'c' if next == 'h' => (Some('C'), 2),
            'c' if front(next) => (Some('s'), 1),
            'c' | 'k' => (Some('k'), 1),
            'q' if next == 'u' => (Some('k'), 2),
            'q' => (Some('k'), 1),
            'z' => (Some('s'), 1),
            'v' | 'b' => (Some('b'), 1),
            'y' => (Some('i'), 1),
            'l' if next == 'l' => (Some('i'), 2),
            'x' | 'j' => (Some('j'), 1),
            'g' if front(next) => (Some('j'), 1),
            // "gue", "gui": the u is silent and the g hard.
            'g' if next == 'u' && front(at(i + 2)) => (Some('g'), 2),
            'p' if next == 'h' => (Some('f'), 2),
            't' if next == 'h' => (Some('t'), 2),
            other => (Some(other), 1),
        };
        if let Some(key) = key {
            // Doubled letters (and pairs that became one sound) count once.
            if out.last() != Some(&key) {
                out.push(key);
            }
        }
        i += used;
    }
    out.into_iter().collect()
}

/// How two names agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameAgreement {
    /// Some names in common, including a surname: a weak sign.
    Partial,
    /// The same words by sound, one side without the second surname.
    SoundsAlikeButSecondSurname,
    /// The same words by sound (spelling variants).
    SoundsAlike,
    /// The same words, but one side has no second surname.
    SameButSecondSurname,
    /// The same words, accents, case and word order ignored.
    Same,
}

impl NameAgreement {
    /// Weight of the agreement, 0 to 1.
    pub fn weight(self) -> f64 {
        match self {
            NameAgreement::Same => 1.0,
            NameAgreement::SameButSecondSurname => 0.95,
            NameAgreement::SoundsAlike => 0.9,
            NameAgreement::SoundsAlikeButSecondSurname => 0.85,
            NameAgreement::Partial => 0.6,
        }
    }
}

/// Which side of a comparison lacks the second surname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The intake has none; the record has one.
    FromIntake,
    /// The record has none; the intake has one.
    OnRecord,
}

/// How the names of an intake and of a record agree, and which side lacks a second surname.
pub fn compare_names(intake: &NameWords, record: &NameWords) -> Option<(NameAgreement, Option<Missing>)> {
    if intake.all().next().is_none() || record.all().next().is_none() {
        return None;
    }
    if intake.plain_set(false) == record.plain_set(false) {
        return Some((NameAgreement::Same, None));
    }
    let lacking = match (intake.second_surname.is_empty(), record.second_surname.is_empty()) {
        (true, false) => Some(Missing::FromIntake),
        (false, true) => Some(Missing::OnRecord),
        _ => None,
    };
    let (skip_intake, skip_record) = (lacking == Some(Missing::OnRecord), lacking == Some(Missing::FromIntake));
    if lacking.is_some() && intake.plain_set(skip_intake) == record.plain_set(skip_record) {
        return Some((NameAgreement::SameButSecondSurname, lacking));
    }
    if intake.sound_set(false) == record.sound_set(false) {
        return Some((NameAgreement::SoundsAlike, None));
    }
    if lacking.is_some() && intake.sound_set(skip_intake) == record.sound_set(skip_record) {
        return Some((NameAgreement::SoundsAlikeButSecondSurname, lacking));
    }
    let theirs = record.sound_set(false);
    let shared = intake.sound_set(false).into_iter().filter(|s| theirs.contains(s)).count();
    let surname_shared = record.surnames().any(|w| intake.all().any(|v| v.sound == w.sound));
    (shared >= 2 && surname_shared).then_some((NameAgreement::Partial, None))
}

/// How two dates of birth agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateAgreement {
    /// The same date.
    Same,
    /// Day and month swapped (03/02 against 02/03).
    DayMonthSwapped,
    /// One digit of YYYYMMDD differs.
    OneDigitOff,
}

impl DateAgreement {
    /// Weight of the agreement, 0 to 1.
    pub fn weight(self) -> f64 {
        match self {
            DateAgreement::Same => 1.0,
            DateAgreement::DayMonthSwapped => 0.8,
            DateAgreement::OneDigitOff => 0.75,
        }
    }
}

/// The date as the number YYYYMMDD.
pub fn yyyymmdd(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day())
}

/// How two dates of birth, written as YYYYMMDD numbers, agree.
pub fn compare_dates(a: i64, b: i64) -> Option<DateAgreement> {
    if a == b {
        return Some(DateAgreement::Same);
    }
    let (year_a, month_a, day_a) = (a / 10_000, a / 100 % 100, a % 100);
    let (year_b, month_b, day_b) = (b / 10_000, b / 100 % 100, b % 100);
    if year_a == year_b && month_a == day_b && day_a == month_b {
        return Some(DateAgreement::DayMonthSwapped);
    }
    let (mut x, mut y, mut differing) = (a, b, 0);
    for _ in 0..8 {
        differing += i32::from(x % 10 != y % 10);
        x /= 10;
        y /= 10;
    }
    (differing == 1 && x == y).then_some(DateAgreement::OneDigitOff)
}

/// How the documents of an intake and of a record agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentAgreement {
    /// Same type, number and issuing country: the strongest sign.
    Same(IdentityDocument),
    /// Same number, but another type or issuing country.
    SameNumber {
        /// The intake's document.
        intake: IdentityDocument,
        /// The one on record.
        record: IdentityDocument,
    },
}

/// A document number compared without spaces, dashes or case.
pub fn document_number_key(number: &str) -> String {
    number.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

/// The strongest agreement between the documents of an intake and those on record.
pub fn compare_documents(intake: &[IdentityDocument], record: &[IdentityDocument]) -> Option<DocumentAgreement> {
    let mut found = None;
    for mine in intake {
        let number = document_number_key(&mine.number);
        if number.is_empty() {
            continue;
        }
        for theirs in record.iter().filter(|d| document_number_key(&d.number) == number) {
            let same_kind = mine.kind.trim().eq_ignore_ascii_case(theirs.kind.trim());
            let same_country = mine.issuing_country.trim().eq_ignore_ascii_case(theirs.issuing_country.trim());
            if same_kind && same_country {
                return Some(DocumentAgreement::Same(theirs.clone()));
            }
            found.get_or_insert(DocumentAgreement::SameNumber { intake: mine.clone(), record: theirs.clone() });
        }
    }
    found
}

/// How much a person on record resembles an intake identity: a score from 0 to 1 and the
/// reasons in words, strongest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resemblance {
    /// 0 to 1: 1 is a matching document with the same name and date of birth.
    pub score: f64,
    /// Why, in words a records officer reads.
    pub reasons: Vec<String>,
}

fn listed(words: &[NameWord]) -> String {
    words.iter().map(|w| w.plain.as_str()).collect::<Vec<_>>().join(" ")
}

/// Compare an intake identity with one on record. `None` when they have too little in common
/// to show (below [`LISTING_THRESHOLD`]).
pub fn resemblance(intake: &Identity, record: &Identity) -> Option<Resemblance> {
    resemblance_of(intake, &NameWords::of(&intake.name), record)
}

/// As [`resemblance`], with the intake's name words already computed (they are the same for every
/// person compared with one intake).
pub fn resemblance_of(intake: &Identity, intake_words: &NameWords, record: &Identity) -> Option<Resemblance> {
    let mut reasons = Vec::new();
    let document = compare_documents(&intake.documents, &record.documents);
    match &document {
        Some(DocumentAgreement::Same(d)) => {
            reasons.push(format!("same identity document: {} {} issued by {}", d.kind, d.number, d.issuing_country))
        }
        Some(DocumentAgreement::SameNumber { intake, record }) => reasons.push(format!(
            "same document number {}, but recorded as {} issued by {} (intake: {} issued by {})",
            record.number, record.kind, record.issuing_country, intake.kind, intake.issuing_country
        )),
        None => {}
    }
    let record_words = NameWords::of(&record.name);
    let names = compare_names(intake_words, &record_words);
    if let Some((agreement, missing)) = names {
        let second = match missing {
            Some(Missing::FromIntake) => {
                format!(" (second surname {} on record only)", listed(&record_words.second_surname))
            }
            Some(Missing::OnRecord) => {
                format!(" (second surname {} given at intake only)", listed(&intake_words.second_surname))
            }
            None => String::new(),
        };
        reasons.push(match agreement {
            NameAgreement::Same => "same name (accents, case and word order ignored)".to_string(),
            NameAgreement::SameButSecondSurname => format!("same name but for a missing second surname{second}"),
            NameAgreement::SoundsAlike | NameAgreement::SoundsAlikeButSecondSurname => {
                let variants: Vec<String> = intake_words
                    .all()
                    .filter(|w| !record_words.all().any(|v| v.plain == w.plain))
                    .filter_map(|w| record_words.all().find(|v| v.sound == w.sound).map(|v| (w, v)))
                    .map(|(w, v)| format!("{} ~ {}", w.plain, v.plain))
                    .collect();
                let what = if agreement == NameAgreement::SoundsAlike {
                    "names match".to_string()
                } else {
                    format!("names match but for a missing second surname{second},")
                };
                format!("{what} under spelling variants: {}", variants.join(", "))
            }
            NameAgreement::Partial => {
                let shared: Vec<&str> = record_words
                    .all()
                    .filter(|w| intake_words.all().any(|v| v.sound == w.sound))
                    .map(|w| w.plain.as_str())
                    .collect();
                format!("some names in common: {}", shared.join(", "))
            }
        });
    }
    let dates = compare_dates(yyyymmdd(intake.date_of_birth), yyyymmdd(record.date_of_birth));
    match dates {
        Some(DateAgreement::Same) => reasons.push(format!("same date of birth {}", record.date_of_birth)),
        Some(DateAgreement::DayMonthSwapped) => {
            reasons.push(format!("date of birth {} on record: day and month swapped", record.date_of_birth))
        }
        Some(DateAgreement::OneDigitOff) => {
            reasons.push(format!("date of birth {} on record: one digit off", record.date_of_birth))
        }
        None => {}
    }
    let together = match (names, dates) {
        (Some((n, _)), Some(d)) => n.weight() * d.weight(),
        _ => 0.0,
    };
    let mut score = match document {
        Some(DocumentAgreement::Same(_)) => 0.95 + 0.05 * together,
        Some(DocumentAgreement::SameNumber { .. }) => (0.5 + 0.4 * together).max(0.9 * together),
        None => 0.9 * together,
    };
    if intake.sex != record.sex {
        score *= 0.8;
        reasons.push(format!("sex on record differs: {}", record.sex.as_str()));
    }
    let score = (score * 1000.0).round() / 1000.0;
    (score >= LISTING_THRESHOLD).then_some(Resemblance { score, reasons })
}

/// 64-bit FNV-1a: a hash that never changes between builds, since match keys are stored.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(b"|") {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// A 64-bit summary of a name's sounds (two bits per sound), stored beside each match key so that
/// a lookup can tell which people share enough names to be worth reading in full.
pub fn name_signature<'a>(sounds: impl IntoIterator<Item = &'a str>) -> i64 {
    sounds.into_iter().fold(0u64, |sig, s| sig | sound_bits(s)) as i64
}

fn sound_bits(sound: &str) -> u64 {
    let h = fnv(&[sound.as_bytes()]);
    (1 << (h & 63)) | (1 << ((h >> 6) & 63))
}

/// How many of `sounds` a signature holds (may overcount by chance, never undercounts).
pub fn signature_overlap(signature: i64, sounds: &[&str]) -> usize {
    sounds.iter().filter(|s| (signature as u64) & sound_bits(s) == sound_bits(s)).count()
}

/// The three keys of one sound and one date: with year and month, with year and day, with
/// month and day. Two dates one digit apart share two of the three parts, so they share a key.
fn date_keys(sound: &str, born: i64) -> [i64; 3] {
    let (year, month, day) = (born / 10_000, born / 100 % 100, born % 100);
    let key = |tag: &[u8], a: i64, b: i64| fnv(&[sound.as_bytes(), tag, &a.to_le_bytes(), &b.to_le_bytes()]) as i64;
    [key(b"ym", year, month), key(b"yd", year, day), key(b"md", month, day)]
}

/// The match keys stored for a person: each sound of their surnames with the parts of their
/// date of birth. Given names are left out (they are many and common); an intake is looked up
/// with every one of its words, so a surname written among the given names is still found.
pub fn index_keys(name: &PersonName, date_of_birth: NaiveDate) -> Vec<i64> {
    let words = NameWords::of(name);
    let born = yyyymmdd(date_of_birth);
    let mut keys: Vec<i64> = words.surnames().flat_map(|w| date_keys(&w.sound, born)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The keys to look up for an intake: every sound of every word of the name with the parts of
/// the date of birth, and with the year and month of the date with day and month swapped.
pub fn probe_keys(words: &NameWords, date_of_birth: NaiveDate) -> Vec<i64> {
    let born = yyyymmdd(date_of_birth);
    let swapped = NaiveDate::from_ymd_opt(date_of_birth.year(), date_of_birth.day(), date_of_birth.month())
        .filter(|d| *d != date_of_birth)
        .map(yyyymmdd);
    let mut keys = Vec::new();
    for sound in words.sounds() {
        keys.extend(date_keys(sound, born));
        if let Some(swapped) = swapped {
            keys.push(date_keys(sound, swapped)[0]);
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Whether a person found under a match key is worth reading in full: their date of birth agrees
/// and, by the signature, their name's sounds include the intake's or the other way round (a
/// missing second surname), or two sounds are shared and the date is the same.
pub fn worth_comparing(intake_sounds: &[&str], intake_born: i64, born: i64, signature: i64, words: i64) -> bool {
    let Some(date) = compare_dates(intake_born, born) else { return false };
    let shared = signature_overlap(signature, intake_sounds);
    shared == intake_sounds.len() || shared as i64 >= words || (shared >= 2 && date == DateAgreement::Same)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::person::Sex;

    fn name(given: &str, first: &str, second: Option<&str>) -> PersonName {
        PersonName {
            given_names: given.parse().unwrap(),
            first_surname: first.parse().unwrap(),
            second_surname: second.map(|s| s.parse().unwrap()),
        }
    }

    fn identity(given: &str, first: &str, second: Option<&str>, born: &str) -> Identity {
        Identity {
            name: name(given, first, second),
            date_of_birth: born.parse().unwrap(),
            sex: Sex::Male,
            gender_identity: None,
            nationality: "SV".parse().unwrap(),
            documents: Vec::new(),
        }
    }

    fn agreement(a: &PersonName, b: &PersonName) -> Option<NameAgreement> {
        compare_names(&NameWords::of(a), &NameWords::of(b)).map(|(n, _)| n)
    }

    #[test]
    fn spelling_variants_sound_alike() {
        let pairs = [
            ("hernandez", "ernandes"),
            ("nunez", "nunes"),
            ("chavez", "chaves"),
            ("yesenia", "llesenia"),
            ("castillo", "castiyo"),
            ("ximena", "jimena"),
            ("jimena", "gimena"),
            ("mejia", "mexia"),
            ("quintanilla", "kintaniya"),
            ("cesar", "zesar"),
            ("alvaro", "albaro"),
            ("rodriguez", "rodrigues"),
            ("guevara", "guebara"),
            ("stephanie", "stefanie"),
            ("ruth", "rut"),
            ("mattos", "matos"),
            ("carlos", "karlos"),
            ("enrique", "enrike"),
            ("nahum", "naum"),
            ("ivan", "iban"),
        ];
        for (a, b) in pairs {
            assert_eq!(sound(a), sound(b), "{a} and {b} should sound alike");
        }
        for (a, b) in [("garcia", "gracia"), ("perez", "paredes"), ("lopez", "lozano"), ("ana", "anna maria")] {
            assert_ne!(sound(a), sound(b), "{a} and {b} are different names");
        }
    }

    #[test]
    fn names_agree_whatever_the_accents_case_and_order() {
        let on_record = name("José Luis", "Hernández", Some("Pérez"));
        assert_eq!(agreement(&name("JOSE LUIS", "HERNANDEZ", Some("PEREZ")), &on_record), Some(NameAgreement::Same));
        assert_eq!(agreement(&name("Luis José", "Pérez", Some("Hernández")), &on_record), Some(NameAgreement::Same));
        assert_eq!(agreement(&name("José Luis", "Hernández Pérez", None), &on_record), Some(NameAgreement::Same));
        assert_eq!(
            agreement(&name("Jose Luis", "Hernandez", None), &on_record),
            Some(NameAgreement::SameButSecondSurname)
        );
        assert_eq!(
            agreement(&on_record, &name("José Luis", "Hernández", None)),
            Some(NameAgreement::SameButSecondSurname)
        );
        assert_eq!(
            agreement(&name("Jose Luiz", "Ernandes", Some("Peres")), &on_record),
            Some(NameAgreement::SoundsAlike)
        );
        assert_eq!(
            agreement(&name("Jose Luiz", "Ernandes", None), &on_record),
            Some(NameAgreement::SoundsAlikeButSecondSurname)
        );
        assert_eq!(agreement(&name("José", "Hernández", Some("López")), &on_record), Some(NameAgreement::Partial));
        assert_eq!(agreement(&name("María", "López", Some("Díaz")), &on_record), None);
        assert_eq!(agreement(&name("Ana", "de la Cruz", None), &name("Ana", "Cruz", None)), Some(NameAgreement::Same));
    }

    #[test]
    fn dates_agree_equal_swapped_or_one_digit_off() {
        let d = |s: &str| yyyymmdd(s.parse().unwrap());
        assert_eq!(compare_dates(d("1990-02-03"), d("1990-02-03")), Some(DateAgreement::Same));
        assert_eq!(compare_dates(d("1990-02-03"), d("1990-03-02")), Some(DateAgreement::DayMonthSwapped));
        assert_eq!(compare_dates(d("1990-02-03"), d("1990-02-08")), Some(DateAgreement::OneDigitOff));
        assert_eq!(compare_dates(d("1990-02-03"), d("1980-02-03")), Some(DateAgreement::OneDigitOff));
        assert_eq!(compare_dates(d("1990-02-03"), d("1990-12-03")), Some(DateAgreement::OneDigitOff));
        assert_eq!(compare_dates(d("1990-02-03"), d("1991-03-02")), None);
        assert_eq!(compare_dates(d("1990-02-03"), d("1990-02-14")), None);
    }

    #[test]
    fn keys_of_dates_one_digit_apart_or_swapped_meet() {
        let on_record = name("José Luis", "Hernández", Some("Pérez"));
        let stored = index_keys(&on_record, "1990-02-03".parse().unwrap());
        for (intake, born) in [
            (name("Jose Luis", "Ernandes", None), "1990-02-03"),
            (name("Jose", "Peres", None), "1990-03-02"),
            (name("Luis", "Hernandez", None), "1990-02-08"),
            (name("Luis", "Hernandez", None), "1980-02-03"),
            (name("Luis", "Hernandez", None), "1990-12-03"),
            (name("Hernández José", "Luis", None), "1990-02-03"),
        ] {
            let probed = probe_keys(&NameWords::of(&intake), born.parse().unwrap());
            assert!(probed.iter().any(|k| stored.contains(k)), "{intake:?} born {born} should meet the record");
        }
        let probed = probe_keys(&NameWords::of(&on_record), "1975-07-21".parse().unwrap());
        assert!(!probed.iter().any(|k| stored.contains(k)), "another date of birth shares no key");
    }

    #[test]
    fn the_signature_never_misses_a_shared_sound() {
        let words = NameWords::of(&name("José Luis", "Hernández", Some("Pérez")));
        let signature = name_signature(words.sounds());
        assert_eq!(signature_overlap(signature, &words.sounds()), 4);
        let intake = NameWords::of(&name("Jose", "Ernandes", None));
        assert_eq!(signature_overlap(signature, &intake.sounds()), 2);
    }

    #[test]
    fn scores_rank_documents_then_names_and_dates() {
        let mut on_record = identity("José Luis", "Hernández", Some("Pérez"), "1990-02-03");
        on_record.documents = vec![IdentityDocument {
            kind: "dui".parse().unwrap(),
            number: "01234567-8".parse().unwrap(),
            issuing_country: "SV".parse().unwrap(),
        }];
        let score = |intake: &Identity| resemblance(intake, &on_record).map(|r| r.score).unwrap_or(0.0);

        let mut by_document = identity("Pedro", "Gómez", None, "1970-01-01");
        by_document.documents = vec![IdentityDocument {
            kind: "DUI".parse().unwrap(),
            number: "012345678".parse().unwrap(),
            issuing_country: "SV".parse().unwrap(),
        }];
        let same = identity("JOSE LUIS", "HERNANDEZ", Some("PEREZ"), "1990-02-03");
        let missing = identity("José Luis", "Hernández", None, "1990-02-03");
        let variants = identity("Jose Luiz", "Ernandes", Some("Peres"), "1990-02-03");
        let swapped = identity("José Luis", "Hernández", Some("Pérez"), "1990-03-02");
        let digit = identity("José Luis", "Hernández", Some("Pérez"), "1990-02-08");
        let namesake = identity("José Luis", "Hernández", Some("Pérez"), "1975-07-21");

        assert!(score(&by_document) >= 0.95, "a document is the strongest sign");
        assert!(score(&by_document) > score(&same));
        assert!(score(&same) > score(&missing));
        assert!(score(&missing) > score(&variants));
        assert!(score(&variants) > score(&swapped));
        assert!(score(&swapped) > score(&digit));
        assert!(score(&digit) >= LISTING_THRESHOLD);
        assert_eq!(resemblance(&namesake, &on_record), None, "a namesake born another day is not listed");
        let reasons = resemblance(&swapped, &on_record).unwrap().reasons;
        assert_eq!(
            reasons,
            [
                "same name (accents, case and word order ignored)",
                "date of birth 1990-02-03 on record: day and month swapped"
            ]
        );
    }
}
