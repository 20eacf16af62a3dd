//! Incidents, injuries and the obligations they open.

use crate::sqlite::SqliteTx;

/// Reads and writes of incidents, in the caller's transaction.
pub trait IncidentTx {}

impl IncidentTx for SqliteTx<'_> {}
