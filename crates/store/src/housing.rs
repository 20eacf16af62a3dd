//! Classification, unit designation, security threat groups, keep-apart rules, capacity lines
//! and overrides, and roll counts.

use crate::sqlite::SqliteTx;

/// Reads and writes of housing rules, in the caller's transaction.
pub trait HousingTx {}

impl HousingTx for SqliteTx<'_> {}
