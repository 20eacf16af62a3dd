//! People, their identity, and what an admission must record (Mandela Rule 7).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

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
    pub given_names: String,
    /// First (paternal) surname.
    pub first_surname: String,
    /// Second (maternal) surname, when the person has one.
    #[serde(default)]
    pub second_surname: Option<String>,
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
    pub kind: String,
    /// Document number as printed.
    pub number: String,
    /// ISO 3166 code of the issuing country.
    pub issuing_country: String,
}

/// Identity of a person, lasting across custody episodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    pub gender_identity: Option<String>,
    /// Nationality, ISO 3166 code.
    pub nationality: String,
    /// Identity documents.
    #[serde(default)]
    pub documents: Vec<IdentityDocument>,
}

/// The legal basis of a detention (Rule 7b).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegalBasis {
    /// What kind of order it is.
    pub kind: LegalBasisKind,
    /// Who issued it, for example a court.
    pub issuing_authority: String,
    /// The order's reference.
    pub reference: String,
    /// The date it was issued.
    pub date: NaiveDate,
}

/// A visible injury noted at intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Injury {
    /// What was seen.
    pub description: String,
    /// Where on the body.
    #[serde(default)]
    pub location: Option<String>,
}

/// One item of the property inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PropertyItem {
    /// The item.
    pub description: String,
    /// How many.
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
    pub name: String,
    /// Relationship to the person held.
    pub relationship: String,
    /// Telephone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Postal address.
    #[serde(default)]
    pub address: Option<String>,
}

/// A dependant of the person held (a child, an elderly parent…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dependant {
    /// Full name.
    pub name: String,
    /// Relationship to the person held.
    pub relationship: String,
    /// Date of birth, when known.
    #[serde(default)]
    pub date_of_birth: Option<NaiveDate>,
    /// Who cares for them now.
    #[serde(default)]
    pub care_arrangement: Option<String>,
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
    pub arrest_place: String,
    /// Visible injuries; each opens a medical-examination task.
    #[serde(default)]
    pub injuries: Vec<Injury>,
    /// Complaints of prior ill-treatment; each opens a medical-examination task.
    #[serde(default)]
    pub complaints: Vec<String>,
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

fn required(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "is required"));
    }
}

fn country(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    let ok = (2..=3).contains(&value.len()) && value.chars().all(|c| c.is_ascii_uppercase());
    if !ok {
        errors.push(FieldError::new(
            field,
            format!("`{value}` is not an ISO 3166 country code in capitals such as SV or SLV"),
        ));
    }
}

impl Admission {
    /// Check every field; returns all the problems at once so the officer can fix them together.
    /// `admitted_at` is when the admission happens: arrest and orders cannot be later.
    pub fn validate(&self, admitted_at: Instant) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let id = &self.identity;
        required(&mut errors, "identity.given_names", &id.name.given_names);
        required(&mut errors, "identity.first_surname", &id.name.first_surname);
        if let Some(second) = &id.name.second_surname {
            required(&mut errors, "identity.second_surname", second);
        }
        country(&mut errors, "identity.nationality", &id.nationality);
        if id.date_of_birth > admitted_at.date_naive() {
            errors.push(FieldError::new("identity.date_of_birth", "is after the admission"));
        }
        for (i, doc) in id.documents.iter().enumerate() {
            required(&mut errors, &format!("identity.documents[{i}].kind"), &doc.kind);
            required(&mut errors, &format!("identity.documents[{i}].number"), &doc.number);
            country(&mut errors, &format!("identity.documents[{i}].issuing_country"), &doc.issuing_country);
        }
        match &self.legal_basis {
            None => errors.push(FieldError::new(
                "legal_basis",
                "is required: no one is admitted without a legal basis (Mandela Rule 7)",
            )),
            Some(basis) => {
                required(&mut errors, "legal_basis.issuing_authority", &basis.issuing_authority);
                required(&mut errors, "legal_basis.reference", &basis.reference);
                if basis.date > admitted_at.date_naive() {
                    errors.push(FieldError::new("legal_basis.date", "is after the admission"));
                }
            }
        }
        if self.arrested_at > admitted_at {
            errors.push(FieldError::new("arrested_at", "is after the admission"));
        }
        required(&mut errors, "arrest_place", &self.arrest_place);
        for (i, injury) in self.injuries.iter().enumerate() {
            required(&mut errors, &format!("injuries[{i}].description"), &injury.description);
        }
        for (i, complaint) in self.complaints.iter().enumerate() {
            required(&mut errors, &format!("complaints[{i}]"), complaint);
        }
        for (i, item) in self.property.iter().enumerate() {
            required(&mut errors, &format!("property[{i}].description"), &item.description);
        }
        for (i, kin) in self.next_of_kin.iter().enumerate() {
            required(&mut errors, &format!("next_of_kin[{i}].name"), &kin.name);
        }
        if let Some(contact) = &self.emergency_contact {
            required(&mut errors, "emergency_contact.name", &contact.name);
        }
        for (i, d) in self.dependants.iter().enumerate() {
            required(&mut errors, &format!("dependants[{i}].name"), &d.name);
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
        a.identity.name.given_names = " ".into();
        a.identity.nationality = "el salvador".into();
        a.arrest_place.clear();
        let now = chrono::Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap();
        let fields: Vec<String> = a.validate(now).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["identity.given_names", "identity.nationality", "legal_basis.date", "arrested_at", "arrest_place"]
        );
    }

    #[test]
    fn name_words_ignore_case_accents_and_hyphens() {
        assert_eq!(name_tokens("José-Luis  NÚÑEZ"), ["jose", "luis", "nunez"]);
        let name =
            PersonName { given_names: "María José".into(), first_surname: "Peña".into(), second_surname: None };
        assert_eq!(name.tokens(), ["jose", "maria", "pena"]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(admission()).unwrap();
        v["shoe_size"] = serde_json::json!(42);
        assert!(serde_json::from_value::<Admission>(v).is_err());
    }
}
