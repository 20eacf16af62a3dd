//! Intake: the Mandela Rule 7 admission form, identity candidates while typing, and "place now".

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use chrono::NaiveDate;

use domain::person::{
    Admission, Contact, Dependant, Identity, IdentityDocument, Injury, LegalBasis, LegalBasisKind, PersonName,
    PropertyItem, Sex,
};
use domain::FieldError;
use serde::Deserialize;
use service::custody::{AdmitRequest, DifferentPerson};
use service::housing::PlacementOption;
use service::identity::Candidate;

use super::{page, page_status, Chrome, Refusal, Ui, UiResult};
use crate::problem::ApiError;
use crate::request::open_person;
use crate::AppState;

/// The form as sent: every input by name.
pub(crate) struct IntakeForm(HashMap<String, String>);

impl IntakeForm {
    fn parse(body: &[u8]) -> Self {
        Self(serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default().into_iter().collect())
    }

    /// A value, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(|v| v.trim()).unwrap_or("")
    }

    fn optional(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// A required value of a type with rules; a problem is noted beside the field.
    fn text<T: TryFrom<String, Error = String>>(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<T> {
        T::try_from(self.get(name).to_string()).map_err(|problem| errors.push(FieldError::new(name, problem))).ok()
    }

    /// An optional value of a type with rules: absent when left empty.
    fn optional_text<T: TryFrom<String, Error = String>>(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<T> {
        self.optional(name).and_then(|_| self.text(name, errors))
    }

    fn date(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
        match self.get(name) {
            "" => {
                errors.push(FieldError::new(name, "is required"));
                None
            }
            text => text.parse().map_err(|_| errors.push(FieldError::new(name, "is not a date (YYYY-MM-DD)"))).ok(),
        }
    }

    fn identity(&self, errors: &mut Vec<FieldError>) -> Option<Identity> {
        let sex = match self.get("identity.sex") {
            "male" => Some(Sex::Male),
            "female" => Some(Sex::Female),
            "other" => Some(Sex::Other),
            _ => {
                errors.push(FieldError::new("identity.sex", "choose male, female or other"));
                None
            }
        };
        let given_names = self.text("identity.given_names", errors);
        let first_surname = self.text("identity.first_surname", errors);
        let second_surname = self.optional_text("identity.second_surname", errors);
        let date_of_birth = self.date("identity.date_of_birth", errors);
        let gender_identity = self.optional_text("identity.gender_identity", errors);
        let nationality = self.text("identity.nationality", errors);
        let document = match self.get("identity.documents[0].number") {
            "" => None,
            _ => Some((
                self.text("identity.documents[0].kind", errors),
                self.text("identity.documents[0].number", errors),
                self.text("identity.documents[0].issuing_country", errors),
            )),
        };
        let documents = match document {
            None => Vec::new(),
            Some((Some(kind), Some(number), Some(issuing_country))) => {
                vec![IdentityDocument { kind, number, issuing_country }]
            }
            Some(_) => return None,
        };
        Some(Identity {
            name: PersonName { given_names: given_names?, first_surname: first_surname?, second_surname },
            date_of_birth: date_of_birth?,
            sex: sex?,
            gender_identity,
            nationality: nationality?,
            documents,
        })
    }

    fn contact(&self, prefix: &str, errors: &mut Vec<FieldError>) -> Option<Contact> {
        self.optional(&format!("{prefix}.name"))?;
        Some(Contact {
            name: self.text(&format!("{prefix}.name"), errors)?,
            relationship: self.text(&format!("{prefix}.relationship"), errors)?,
            phone: self.optional_text(&format!("{prefix}.phone"), errors),
            address: None,
        })
    }

    /// The admission request, or every field problem found before the service is asked.
    fn request(&self, zone: chrono_tz::Tz) -> Result<AdmitRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let identity = self.identity(&mut errors);
        let kind = LEGAL_BASIS_KINDS.iter().find(|(code, _)| *code == self.get("legal_basis.kind")).map(|(_, k)| *k);
        let basis_date = self.date("legal_basis.date", &mut errors);
        let authority = self.text("legal_basis.issuing_authority", &mut errors);
        let reference = self.text("legal_basis.reference", &mut errors);
        let legal_basis = match kind {
            None => {
                errors.push(FieldError::new(
                    "legal_basis.kind",
                    "is required: no one is admitted without a legal basis (Mandela Rule 7)",
                ));
                None
            }
            Some(kind) => match (basis_date, authority, reference) {
                (Some(date), Some(issuing_authority), Some(reference)) => {
                    Some(LegalBasis { kind, issuing_authority, reference, date })
                }
                _ => None,
            },
        };
        let arrested_at = match super::form_instant("arrested_at", self.optional("arrested_at").as_deref(), zone) {
            Ok(at) if !self.get("arrested_at").is_empty() => Some(at),
            Ok(_) => {
                errors.push(FieldError::new("arrested_at", "is required"));
                None
            }
            Err(e) => {
                errors.extend(e.problem().fields.iter().map(|f| FieldError::new(f.field.clone(), f.problem.clone())));
                None
            }
        };
        let arrest_place = self.text("arrest_place", &mut errors);
        let quantity = match self.get("property[0].quantity") {
            "" => 1,
            q => q.parse().unwrap_or_else(|_| {
                errors.push(FieldError::new("property[0].quantity", "is not a whole number"));
                1
            }),
        };
        let injury = self.optional_text("injuries[0].description", &mut errors).map(|description| Injury {
            description,
            location: self.optional_text("injuries[0].location", &mut errors),
        });
        let complaint = self.optional_text("complaints[0]", &mut errors);
        let property = self
            .optional_text("property[0].description", &mut errors)
            .map(|description| PropertyItem { description, quantity });
        let next_of_kin = self.contact("next_of_kin[0]", &mut errors);
        let emergency_contact = self.contact("emergency_contact", &mut errors);
        let dependant = match self.optional("dependants[0].name") {
            None => None,
            Some(_) => match (
                self.text("dependants[0].name", &mut errors),
                self.text("dependants[0].relationship", &mut errors),
            ) {
                (Some(name), Some(relationship)) => Some(Dependant {
                    name,
                    relationship,
                    date_of_birth: None,
                    care_arrangement: self.optional_text("dependants[0].care_arrangement", &mut errors),
                }),
                _ => None,
            },
        };
        let different_person =
            self.optional_text("different_person.reason", &mut errors).map(|reason| DifferentPerson { reason });
        let (Some(identity), Some(arrested_at), Some(arrest_place), true) =
            (identity, arrested_at, arrest_place, errors.is_empty())
        else {
            return Err(errors);
        };
        Ok(AdmitRequest {
            facility: self.get("facility").to_string(),
            person: self.optional("person").filter(|p| p != NEW_PERSON),
            at: None,
            foreign: None,
            different_person,
            admission: Admission {
                identity,
                legal_basis,
                arrested_at,
                arrest_place,
                injuries: injury.into_iter().collect(),
                complaints: complaint.into_iter().collect(),
                property: property.into_iter().collect(),
                next_of_kin: next_of_kin.into_iter().collect(),
                emergency_contact,
                dependants: dependant.into_iter().collect(),
            },
        })
    }
}

const LEGAL_BASIS_KINDS: &[(&str, LegalBasisKind)] = &[
    ("arrest_warrant", LegalBasisKind::ArrestWarrant),
    ("remand_order", LegalBasisKind::RemandOrder),
    ("judgment", LegalBasisKind::Judgment),
    ("transfer_agreement", LegalBasisKind::TransferAgreement),
    ("administrative_detention", LegalBasisKind::AdministrativeDetention),
];

/// Fields the form shows one by one, so their problems appear beside them.
const SHOWN: &[&str] = &[
    "facility",
    "identity.given_names",
    "identity.first_surname",
    "identity.second_surname",
    "identity.date_of_birth",
    "identity.sex",
    "identity.nationality",
    "identity.documents[0].kind",
    "identity.documents[0].number",
    "identity.documents[0].issuing_country",
    "legal_basis",
    "legal_basis.kind",
    "legal_basis.issuing_authority",
    "legal_basis.reference",
    "legal_basis.date",
    "arrested_at",
    "arrest_place",
    "injuries[0].description",
    "complaints[0]",
    "property[0].description",
    "property[0].quantity",
    "next_of_kin[0].name",
    "emergency_contact.name",
    "dependants[0].name",
    "different_person.reason",
];

#[derive(Template)]
#[template(path = "intake.html")]
struct IntakePage {
    chrome: Chrome,
    form: IntakeForm,
    facilities: Vec<String>,
    refusal: Option<Refusal>,
    others: Vec<String>,
    candidates: Option<Vec<Candidate>>,
    /// The candidate chosen as the same person, if any.
    chosen: String,
    /// The form's one-time key: sending the same form twice admits once.
    key: String,
    kinds: Vec<&'static str>,
}

impl IntakePage {
    /// Whether a select's option was the one sent.
    fn chose(&self, name: &str, value: &str) -> bool {
        self.form.get(name) == value
    }

    fn problem(&self, field: &str) -> Option<&str> {
        let refusal = self.refusal.as_ref()?;
        refusal.on(field).or_else(|| (field == "legal_basis.kind").then(|| refusal.on("legal_basis")).flatten())
    }
}

async fn facilities(state: &AppState, ui: &Ui) -> UiResult<Vec<String>> {
    let staff = ui.staff().clone();
    let all = state.run(|s| s.facilities()).await?;
    Ok(all.into_iter().map(|f| f.code).filter(|c| staff.sees(c)).collect())
}

fn intake_page(ui: &Ui, form: IntakeForm, facilities: Vec<String>, refusal: Option<Refusal>) -> IntakePage {
    let others = refusal.as_ref().map(|r| r.others(SHOWN)).unwrap_or_default();
    IntakePage {
        chrome: ui.chrome("/intake"),
        chosen: form.get("person").to_string(),
        key: Some(form.get("key")).filter(|k| !k.is_empty()).map(str::to_string).unwrap_or_else(super::random_token),
        form,
        facilities,
        refusal,
        others,
        candidates: None,
        kinds: LEGAL_BASIS_KINDS.iter().map(|(code, _)| *code).collect(),
    }
}

pub(crate) async fn form(State(state): State<AppState>, Extension(ui): Extension<Ui>) -> UiResult {
    let facilities = facilities(&state, &ui).await?;
    page(intake_page(&ui, IntakeForm(HashMap::new()), facilities, None))
}

#[derive(Template)]
#[template(path = "candidates.html")]
struct CandidatesFragment {
    candidates: Option<Vec<Candidate>>,
    chosen: String,
}

/// The `person` value of "None of these: a new person".
const NEW_PERSON: &str = "new";

/// The person the form admits as: the one chosen; before any choice, a candidate whose document
/// is the one typed (most likely the same human); otherwise nobody yet.
fn chosen(form: &IntakeForm, candidates: &Option<Vec<Candidate>>) -> String {
    match form.get("person") {
        "" => candidates.iter().flatten().find(|c| c.same_document).map(|c| c.number.clone()).unwrap_or_default(),
        chosen => chosen.to_string(),
    }
}

impl IntakePage {
    fn with_candidates(mut self, candidates: Option<Vec<Candidate>>) -> Self {
        self.chosen = chosen(&self.form, &candidates);
        self.candidates = candidates;
        self
    }
}

/// People on record who may be the person at the desk, for the identity typed so far.
async fn find_candidates(state: &AppState, ui: &Ui, form: &IntakeForm) -> UiResult<Option<Vec<Candidate>>> {
    let mut errors = Vec::new();
    let identity = form.identity(&mut errors);
    let Some(identity) = identity.filter(|i| !i.name.given_names.is_empty() && !i.name.first_surname.is_empty()) else {
        return Ok(None);
    };
    let staff = ui.staff().clone();
    let found = state.run(move |s| s.identity_candidates(&identity, Some(5), |f| staff.sees(f))).await;
    match found {
        Ok(candidates) => {
            let named = candidates.iter().map(|c| c.number.as_str());
            crate::request::log_reads_of(state, &ui.caller, named, "POST /intake/candidates").await?;
            Ok(Some(candidates))
        }
        // An identity still being typed may not be checkable yet: show nothing rather than an error.
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The htmx fragment: candidates for what has been typed.
pub(crate) async fn candidates(State(state): State<AppState>, Extension(ui): Extension<Ui>, body: Bytes) -> UiResult {
    let form = IntakeForm::parse(&body);
    let candidates = find_candidates(&state, &ui, &form).await?;
    page(CandidatesFragment { chosen: chosen(&form, &candidates), candidates })
}

#[derive(Template)]
#[template(path = "admitted.html")]
struct AdmittedPage {
    chrome: Chrome,
    number: String,
    facility: String,
    medical_tasks: usize,
    options: Vec<PlacementOption>,
    refused: usize,
    may_place: bool,
}

/// Most cells "place now" offers.
const PLACE_NOW: usize = 12;

/// Admit, or (with `check`, for browsers without JavaScript) show the identity candidates.
/// A refused form comes back as typed, with its candidates and the problem beside each field;
/// an admission redirects to its own page, so reloading it admits no one twice, and the form's
/// one-time key makes a second send of the same form replay the first answer.
pub(crate) async fn admit(State(state): State<AppState>, Extension(ui): Extension<Ui>, body: Bytes) -> UiResult {
    let form = IntakeForm::parse(&body);
    if !form.get("check").is_empty() {
        let candidates = find_candidates(&state, &ui, &form).await?;
        return page(intake_page(&ui, form, facilities(&state, &ui).await?, None).with_candidates(candidates));
    }
    let zone = super::zone_of(&state, form.get("facility")).await?;
    let request = match form.request(zone) {
        Ok(request) if !ui.staff().sees(&request.facility) => {
            Err(ApiError::validation(vec![FieldError::new("facility", "is not one of yours")]))
        }
        Ok(request) => Ok(request),
        Err(fields) => Err(ApiError::validation(fields)),
    };
    let admitted = match request {
        Ok(request) => admit_once(&state, &ui, &form, &body, request).await,
        Err(e) => Err(e),
    };
    match admitted {
        Ok((number, medical_tasks)) => {
            let to = format!("/intake/admitted/{}?medical_tasks={medical_tasks}", super::urlencode(&number));
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) if e.status().is_client_error() => {
            let status = e.status();
            let candidates = find_candidates(&state, &ui, &form).await?;
            let refusal = Some(Refusal::of(&e));
            page_status(
                status,
                intake_page(&ui, form, facilities(&state, &ui).await?, refusal).with_candidates(candidates),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// Admit under the form's one-time key: (person number, medical examinations opened).
async fn admit_once(
    state: &AppState,
    ui: &Ui,
    form: &IntakeForm,
    body: &[u8],
    request: AdmitRequest,
) -> Result<(String, usize), ApiError> {
    if let Some(number) = &request.person {
        // Re-admitting someone on record: only staff who may see that person, so that the
        // answer never tells others the person exists.
        crate::request::person_in_scope(state, &ui.caller, number).await?;
    }
    let text = String::from_utf8_lossy(body).into_owned();
    let ctx = ui.staff().context(chrono::Utc::now());
    let admitted =
        super::once(state, ui, form.get("key"), text, move |tx| service::custody::admit_in(tx, &ctx, &request)).await?;
    let number = admitted["person"].as_str().ok_or_else(|| ApiError::internal("admission without a person"))?;
    Ok((number.to_string(), admitted["medical_tasks"].as_u64().unwrap_or(0) as usize))
}

#[derive(Deserialize)]
pub(crate) struct AdmittedQuery {
    medical_tasks: Option<usize>,
}

/// After an admission: the cells where the person may legally go now, emptiest first.
pub(crate) async fn admitted(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(number): Path<String>,
    Query(q): Query<AdmittedQuery>,
) -> UiResult {
    open_person(&state, &ui.caller, &number, "GET /intake/admitted/{number}").await?;
    let now = chrono::Utc::now();
    let (whereabouts, options) = {
        let number = number.clone();
        state.run(move |s| Ok((s.whereabouts(&number, now)?, s.placement_options(&number, now)?))).await?
    };
    let refused = options.iter().filter(|o| o.refusal.is_some()).count();
    page(AdmittedPage {
        chrome: ui.chrome("/intake"),
        facility: whereabouts.and_then(|w| w.facility).unwrap_or_default(),
        medical_tasks: q.medical_tasks.unwrap_or(0),
        number,
        options: options.into_iter().filter(|o| o.refusal.is_none()).take(PLACE_NOW).collect(),
        refused,
        may_place: ui.may("POST", "/people/{number}/placement"),
    })
}
