#![forbid(unsafe_code)]
//! Pure types and rules of Custodia. No IO, no SQL, no async.

pub mod allocation;
pub mod audit;
pub mod custody;
pub mod estate;
pub mod identity;
pub mod incident;
pub mod legal;
pub mod person;
pub mod sentence;
pub mod separation;
pub mod text;
pub mod time;

/// One field of an input that is wrong, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Dotted path of the field, for example `legal_basis.reference`.
    pub field: String,
    /// What is wrong, in words a records officer understands.
    pub problem: String,
}

impl FieldError {
    /// A field error for `field` with the given problem.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}
