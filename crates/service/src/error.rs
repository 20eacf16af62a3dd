//! What can go wrong with a command, in terms a user can act on.

use domain::FieldError;
use store::StoreError;

/// Why a command or query did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input that cannot be accepted; every wrong field is listed.
    #[error("invalid input: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// Something named does not exist (or is outside the caller's view).
    #[error("{what} `{key}` not found")]
    NotFound {
        /// What kind of thing.
        what: &'static str,
        /// The key given.
        key: String,
    },
    /// A rule forbids the command; `rule` is a stable name, `detail` says why in words.
    #[error("refused ({rule}): {detail}")]
    Refused {
        /// Stable rule name, for example `custody.sequence`.
        rule: &'static str,
        /// Explanation.
        detail: String,
    },
    /// Something with the same key already exists.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            // Say it in words rather than in SQL.
            StoreError::Duplicate { table, columns } => ServiceError::Conflict(format!(
                "a {} with this {} already exists",
                table.replace('_', " "),
                columns.join(" and ").replace('_', " ")
            )),
            other => ServiceError::Store(other),
        }
    }
}

impl ServiceError {
    /// A single invalid field.
    pub fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError::new(field, problem)])
    }

    /// A rule refusal.
    pub fn refused(rule: &'static str, detail: impl Into<String>) -> Self {
        ServiceError::Refused { rule, detail: detail.into() }
    }
}

/// Result of a command or query.
pub type ServiceResult<T> = Result<T, ServiceError>;
