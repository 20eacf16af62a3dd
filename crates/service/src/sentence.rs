//! Release-date calculation for sentences (nothing is stored): the rules are in
//! `domain::sentence`; here input is read and refusals become [`ServiceError::Invalid`].

use domain::sentence::{Calculation, SentenceInput};
use store::Store;

use crate::{Service, ServiceError, ServiceResult};

/// Read a calculation request from JSON text, naming the field of any error (`sentences[1].years: …`).
pub fn parse_input(text: &str) -> ServiceResult<SentenceInput> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ServiceError::field("sentences", format!("is not valid JSON: {inner}"))
        } else {
            ServiceError::field(if path == "." { "body".to_string() } else { path }, inner.to_string())
        }
    })
}

/// Each sentence's expiry and the release date, with the trace; every wrong field is listed.
pub fn calculate(input: &SentenceInput) -> ServiceResult<Calculation<'_>> {
    domain::sentence::calculate(input).map_err(ServiceError::Invalid)
}

impl<S: Store> Service<S> {
    /// Each sentence's expiry and the release date, with the trace (see [`calculate`]).
    pub fn calculate_sentences<'a>(&self, input: &'a SentenceInput) -> ServiceResult<Calculation<'a>> {
        calculate(input)
    }
}
