//! People, their identity, and what an admission must record (Mandela Rule 7).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::text::{at_most, Code, CountryCode, DocumentNumber, LongText, NamePart, ShortText};
use crate::time::Instant;
use crate::FieldError;

/// Sex as recorded at intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Sex {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Intersex or not recorded as male or female.
    Other,
}

impl Sex {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::Other => "other",
        }
    }
}

/// The kinds of legal basis that allow a person to be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LegalBasisKind {
    /// A warrant of arrest.
    ArrestWarrant,
    /// A court's remand (pretrial detention) order.
    RemandOrder,
    /// A judgment or sentence.
    Judgment,
    /// An agreement to transfer a person from another authority.
    TransferAgreement,
    /// Administrative detention under a decree.
    AdministrativeDetention,
}

impl LegalBasisKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasisKind::ArrestWarrant => "arrest_warrant",
            LegalBasisKind::RemandOrder => "remand_order",
            LegalBasisKind::Judgment => "judgment",
            LegalBasisKind::TransferAgreement => "transfer_agreement",
            LegalBasisKind::AdministrativeDetention => "administrative_detention",
        }
    }
}

/// A person's names as in Spanish naming: given names and up to two surnames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonName {
    /// Given names, for example `José Luis`.
    pub given_names: NamePart,
    /// First (paternal) surname.
    pub first_surname: NamePart,
    /// Second (maternal) surname, when the person has one.
    #[serde(default)]
    pub second_surname: Option<NamePart>,
}

impl PersonName {
    /// The name as staff read it: given names then surnames.
    pub fn full(&self) -> String {
        match &self.second_surname {
            Some(second) => format!("{} {} {}", self.given_names, self.first_surname, second),
            None => format!("{} {}", self.given_names, self.first_surname),
        }
    }
}

/// An identity document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityDocument {
    /// Kind, for example `dui`, `passport`.
    pub kind: Code,
    /// Document number as printed.
    pub number: DocumentNumber,
    /// ISO 3166-1 alpha-2 code of the issuing country.
    pub issuing_country: CountryCode,
}

/// Identity of a person, lasting across custody episodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "IdentityFields")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    /// Names.
    #[serde(flatten)]
    pub name: PersonName,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Sex.
    pub sex: Sex,
    /// Gender identity where self-declared (Rule 7a).
    #[serde(default)]
    pub gender_identity: Option<ShortText>,
    /// Nationality, ISO 3166-1 alpha-2 code.
    pub nationality: CountryCode,
    /// Identity documents, at most 10, each once.
    #[serde(default)]
    pub documents: Vec<IdentityDocument>,
}

/// The fields of an [`Identity`] as sent, one level: read through this so that a refused name
/// part is named by its own path (`identity.given_names`), which `flatten` would lose.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFields {
    given_names: NamePart,
    first_surname: NamePart,
    #[serde(default)]
    second_surname: Option<NamePart>,
    date_of_birth: NaiveDate,
    sex: Sex,
    #[serde(default)]
    gender_identity: Option<ShortText>,
    nationality: CountryCode,
    #[serde(default)]
    documents: Vec<IdentityDocument>,
}

impl From<IdentityFields> for Identity {
    fn from(f: IdentityFields) -> Self {
        Identity {
            name: PersonName {
                given_names: f.given_names,
                first_surname: f.first_surname,
                second_surname: f.second_surname,
            },
            date_of_birth: f.date_of_birth,
            sex: f.sex,
            gender_identity: f.gender_identity,
            nationality: f.nationality,
            documents: f.documents,
        }
    }
}

/// The legal basis of a detention (Rule 7b).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegalBasis {
    /// What kind of order it is.
    pub kind: LegalBasisKind,
    /// Who issued it, for example a court.
    pub issuing_authority: ShortText,
    /// The order's reference.
    pub reference: ShortText,
    /// The date it was issued.
    pub date: NaiveDate,
}

/// A visible injury noted at intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Injury {
    /// What was seen.
    pub description: LongText,
    /// Where on the body.
    #[serde(default)]
    pub location: Option<ShortText>,
}

/// One item of the property inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PropertyItem {
    /// The item.
    pub description: ShortText,
    /// How many, 1 to 10,000.
    #[serde(default = "one")]
    pub quantity: u32,
}

fn one() -> u32 {
    1
}

/// A person to contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    /// Full name.
    pub name: ShortText,
    /// Relationship to the person held.
    pub relationship: ShortText,
    /// Telephone number.
    #[serde(default)]
    pub phone: Option<ShortText>,
    /// Postal address.
    #[serde(default)]
    pub address: Option<ShortText>,
}

/// A dependant of the person held (a child, an elderly parent…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dependant {
    /// Full name.
    pub name: ShortText,
    /// Relationship to the person held.
    pub relationship: ShortText,
    /// Date of birth, when known.
    #[serde(default)]
    pub date_of_birth: Option<NaiveDate>,
    /// Who cares for them now.
    #[serde(default)]
    pub care_arrangement: Option<LongText>,
}

/// Everything Mandela Rule 7 asks to be recorded on admission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Admission {
    /// Who the person is.
    pub identity: Identity,
    /// The order that allows holding them. No legal basis, no admission.
    pub legal_basis: Option<LegalBasis>,
    /// When they were arrested.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub arrested_at: Instant,
    /// Where they were arrested.
    pub arrest_place: ShortText,
    /// Visible injuries; each opens a medical-examination task.
    #[serde(default)]
    pub injuries: Vec<Injury>,
    /// Complaints of prior ill-treatment; each opens a medical-examination task.
    #[serde(default)]
    pub complaints: Vec<LongText>,
    /// Property taken into safekeeping.
    #[serde(default)]
    pub property: Vec<PropertyItem>,
    /// Next of kin.
    #[serde(default)]
    pub next_of_kin: Vec<Contact>,
    /// Who to call in an emergency.
    #[serde(default)]
    pub emergency_contact: Option<Contact>,
    /// People who depend on them.
    #[serde(default)]
    pub dependants: Vec<Dependant>,
}

/// The earliest date of birth (or other date about a living person) accepted.
pub fn earliest_plausible_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date")
}

/// The most entries each list of an admission may have.
pub mod limits {
    /// Identity documents.
    pub const DOCUMENTS: usize = 10;
    /// Visible injuries.
    pub const INJURIES: usize = 50;
    /// Complaints of ill-treatment.
    pub const COMPLAINTS: usize = 50;
    /// Property items.
    pub const PROPERTY: usize = 200;
    /// Quantity of one property item.
    pub const PROPERTY_QUANTITY: u32 = 10_000;
    /// Next of kin.
    pub const NEXT_OF_KIN: usize = 20;
    /// Dependants.
    pub const DEPENDANTS: usize = 30;
}

fn plausible_date(errors: &mut Vec<FieldError>, field: &str, date: NaiveDate, admitted_at: Instant) {
    if date < earliest_plausible_date() {
        errors.push(FieldError::new(field, format!("{date} is before 1900-01-01, the earliest date accepted")));
    } else if date > admitted_at.date_naive() {
        errors.push(FieldError::new(field, "is after the admission"));
    }
}

impl Admission {
    /// Check what the types alone cannot: dates against the admission and each other, list sizes,
    /// repeated documents. Returns all the problems at once so the officer can fix them together.
    /// `admitted_at` is when the admission happens: birth, arrest and orders cannot be later.
    pub fn validate(&self, admitted_at: Instant) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let id = &self.identity;
        plausible_date(&mut errors, "identity.date_of_birth", id.date_of_birth, admitted_at);
        at_most(&mut errors, "identity.documents", &id.documents, limits::DOCUMENTS);
        for (i, doc) in id.documents.iter().enumerate() {
            if id.documents[..i].contains(doc) {
                errors.push(FieldError::new(format!("identity.documents[{i}]"), "repeats an earlier document"));
            }
        }
        match &self.legal_basis {
            None => errors.push(FieldError::new(
                "legal_basis",
                "is required: no one is admitted without a legal basis (Mandela Rule 7)",
            )),
            Some(basis) => plausible_date(&mut errors, "legal_basis.date", basis.date, admitted_at),
        }
        if self.arrested_at > admitted_at {
            errors.push(FieldError::new("arrested_at", "is after the admission"));
        } else if self.arrested_at.date_naive() < earliest_plausible_date() {
            errors.push(FieldError::new("arrested_at", "is before 1900-01-01, the earliest date accepted"));
        }
        at_most(&mut errors, "injuries", &self.injuries, limits::INJURIES);
        at_most(&mut errors, "complaints", &self.complaints, limits::COMPLAINTS);
        at_most(&mut errors, "property", &self.property, limits::PROPERTY);
        for (i, item) in self.property.iter().enumerate() {
            if !(1..=limits::PROPERTY_QUANTITY).contains(&item.quantity) {
                errors.push(FieldError::new(
                    format!("property[{i}].quantity"),
                    format!("is {}; it must be 1 to {}", item.quantity, limits::PROPERTY_QUANTITY),
                ));
            }
        }
        at_most(&mut errors, "next_of_kin", &self.next_of_kin, limits::NEXT_OF_KIN);
        at_most(&mut errors, "dependants", &self.dependants, limits::DEPENDANTS);
        for (i, d) in self.dependants.iter().enumerate() {
            if let Some(born) = d.date_of_birth {
                plausible_date(&mut errors, &format!("dependants[{i}].date_of_birth"), born, admitted_at);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Reasons for a medical examination: one per injury and one per complaint.
    pub fn medical_examination_reasons(&self) -> Vec<String> {
        let injuries = self.injuries.iter().map(|i| match &i.location {
            Some(place) => format!("visible injury: {} ({place})", i.description),
            None => format!("visible injury: {}", i.description),
        });
        let complaints = self.complaints.iter().map(|c| format!("complaint of ill-treatment: {c}"));
        injuries.chain(complaints).collect()
    }
}

/// The searchable words of a name: lower case, accents and the tilde removed, split on spaces and
/// hyphens, so that "Núñez", "NUNEZ" and "nuñez" are the same word.
pub fn name_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
        .map(|word| {
            word.chars().flat_map(char::to_lowercase).map(fold_accent).filter(|c| c.is_alphanumeric()).collect()
        })
        .filter(|w: &String| !w.is_empty())
        .collect()
}

fn fold_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ñ' => 'n',
        'ç' => 'c',
        'ý' | 'ÿ' => 'y',
        other => other,
    }
}

impl PersonName {
    /// Every searchable word of the name.
    pub fn tokens(&self) -> Vec<String> {
        let mut tokens = name_tokens(&self.given_names);
        tokens.extend(name_tokens(&self.first_surname));
        if let Some(second) = &self.second_surname {
            tokens.extend(name_tokens(second));
        }
        tokens.sort();
        tokens.dedup();
        tokens
    }
}

/// A human number staff read out, such as `SV-2026-000123`.
pub fn human_number(prefix: &str, year: i32, sequence: u64) -> String {
    format!("{prefix}-{year}-{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn admission() -> Admission {
        serde_json::from_value(serde_json::json!({
            "identity": {
                "given_names": "José Luis", "first_surname": "Hernández", "second_surname": "Pérez",
                "date_of_birth": "1990-02-03", "sex": "male", "nationality": "SV",
                "documents": [{"kind": "dui", "number": "01234567-8", "issuing_country": "SV"}]
            },
            "legal_basis": {"kind": "remand_order", "issuing_authority": "Juzgado 1", "reference": "R-1", "date": "2026-01-02"},
            "arrested_at": "2026-01-01T10:00:00Z",
            "arrest_place": "San Salvador",
            "injuries": [{"description": "bruise", "location": "left arm"}],
            "complaints": ["beaten during arrest"]
        }))
        .unwrap()
    }

    #[test]
    fn a_complete_admission_is_valid_and_opens_one_task_per_injury_and_complaint() {
        let a = admission();
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 3, 0, 0, 0).unwrap();
        assert_eq!(a.validate(now), Ok(()));
        assert_eq!(a.medical_examination_reasons().len(), 2);
    }

    #[test]
    fn no_legal_basis_no_admission() {
        let mut a = admission();
        a.legal_basis = None;
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 3, 0, 0, 0).unwrap();
        let errors = a.validate(now).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "legal_basis");
    }

    #[test]
    fn all_problems_are_reported_together() {
        let mut a = admission();
        a.identity.date_of_birth = NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        a.identity.documents.push(a.identity.documents[0].clone());
        a.property = vec![PropertyItem { description: "watch".parse().unwrap(), quantity: 0 }];
        a.dependants = vec![Dependant {
            name: "Ana".parse().unwrap(),
            relationship: "daughter".parse().unwrap(),
            date_of_birth: NaiveDate::from_ymd_opt(0, 6, 1),
            care_arrangement: None,
        }];
        a.complaints = vec!["x".parse().unwrap(); 51];
        let now = chrono::Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap();
        let fields: Vec<String> = a.validate(now).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "identity.date_of_birth",
                "identity.documents[1]",
                "legal_basis.date",
                "arrested_at",
                "complaints",
                "property[0].quantity",
                "dependants[0].date_of_birth"
            ]
        );
    }

    #[test]
    fn values_with_rules_are_refused_when_parsed() {
        for (field, value) in [
            ("/identity/given_names", serde_json::json!("a".repeat(100_000))),
            ("/identity/given_names", serde_json::json!("Jos\u{0}e")),
            ("/identity/first_surname", serde_json::json!("\u{202E}zednanreH")),
            ("/identity/nationality", serde_json::json!("el salvador")),
            ("/arrest_place", serde_json::json!("x".repeat(201))),
        ] {
            let mut v = serde_json::to_value(admission()).unwrap();
            *v.pointer_mut(field).unwrap() = value;
            assert!(serde_json::from_value::<Admission>(v).is_err(), "{field} accepted");
        }
    }

    #[test]
    fn name_words_ignore_case_accents_and_hyphens() {
        assert_eq!(name_tokens("José-Luis  NÚÑEZ"), ["jose", "luis", "nunez"]);
        let name = PersonName {
            given_names: "María José".parse().unwrap(),
            first_surname: "Peña".parse().unwrap(),
            second_surname: None,
        };
        assert_eq!(name.tokens(), ["jose", "maria", "pena"]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(admission()).unwrap();
        v["shoe_size"] = serde_json::json!(42);
        assert!(serde_json::from_value::<Admission>(v).is_err());
    }
}
