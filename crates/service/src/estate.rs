//! Describing the estate: facilities from layout files, and cells going out of order and back.

use serde::Serialize;

use domain::estate::apportion_declared;
use store::{NewCell, NewCellStatus, NewFacility, NewUnit, Store, Tx};

use crate::layout::FacilityLayout;
use crate::{audit, Context, Service, ServiceError, ServiceResult};

/// What `add_facility` created.
#[derive(Debug, Clone, Serialize)]
pub struct FacilityCreated {
    /// Facility code.
    pub code: String,
    /// Units created.
    pub units: usize,
    /// Cells created.
    pub cells: usize,
    /// Beds created.
    pub beds: u64,
    /// Audit event that records it.
    pub audit_seq: i64,
}

/// Create a facility with all its units, cells and beds, inside the caller's transaction.
pub fn add_facility_in<T: Tx>(tx: &mut T, ctx: &Context, layout: &FacilityLayout) -> ServiceResult<FacilityCreated> {
    if tx.facility_by_code(&layout.code)?.is_some() {
        return Err(ServiceError::Conflict(format!("facility `{}` already exists", layout.code)));
    }
    let opened = layout.opened.unwrap_or(ctx.now);
    if opened > ctx.now {
        return Err(ServiceError::field(
            "facility.opened",
            format!("{} is in the future; add the facility when it opens", domain::time::rfc3339(opened)),
        ));
    }
    let facility = tx.insert_facility(&NewFacility {
        code: layout.code.clone(),
        name: layout.name.clone(),
        jurisdiction: layout.jurisdiction.clone(),
        time_zone: layout.time_zone.clone(),
        declared_capacity: layout.declared_capacity,
        effective_from: opened,
    })?;
    let dimensions: Vec<_> = layout.units.iter().flat_map(|u| u.cells.iter().map(|c| c.dimensions)).collect();
    let mut rated = apportion_declared(layout.declared_capacity, &dimensions).into_iter();
    let mut beds = 0u64;
    let mut cells_payload = Vec::new();
    for unit in &layout.units {
        let unit_id = tx.insert_unit(&NewUnit { facility, code: unit.code.clone(), name: unit.name.clone() })?;
        for cell in &unit.cells {
            let rated_places = u32::try_from(rated.next().unwrap_or(0)).unwrap_or(u32::MAX);
            let cell_id = tx.insert_cell(&NewCell {
                facility,
                unit: unit_id,
                code: cell.code.clone(),
                dimensions: cell.dimensions,
                rated_places,
            })?;
            for b in 1..=cell.dimensions.beds {
                tx.insert_bed(cell_id, &b.to_string())?;
            }
            beds += u64::from(cell.dimensions.beds);
            tx.insert_cell_status(&NewCellStatus {
                cell: cell_id,
                in_use: cell.out_of_order.is_none(),
                reason: cell.out_of_order.clone(),
                effective_from: opened,
            })?;
            cells_payload.push(serde_json::json!({
                "unit": unit.code, "code": cell.code,
                "floor_area_m2": cell.dimensions.floor_area.m2(), "sanitary_annex_m2": cell.dimensions.sanitary_annex.m2(),
                "beds": cell.dimensions.beds, "single": cell.dimensions.single,
                "rated_places": rated_places, "out_of_order": cell.out_of_order,
            }));
        }
    }
    let payload = serde_json::json!({
        "code": layout.code, "name": layout.name, "jurisdiction": layout.jurisdiction,
        "time_zone": layout.time_zone, "declared_capacity": layout.declared_capacity,
        "opened": domain::time::rfc3339(opened), "cells": cells_payload,
    });
    let audit_seq = audit(tx, ctx, "facility.add", &layout.code, &payload)?;
    Ok(FacilityCreated {
        code: layout.code.clone(),
        units: layout.units.len(),
        cells: layout.cell_count(),
        beds,
        audit_seq,
    })
}

/// A cell status change to record.
#[derive(Debug, Clone, Serialize)]
pub struct CellStatusChange {
    /// Facility code.
    pub facility: String,
    /// Cell code.
    pub cell: String,
    /// Back in use (true) or out of order (false).
    pub in_use: bool,
    /// Why it is out of order; required then.
    pub reason: Option<String>,
}

impl<S: Store> Service<S> {
    /// Create a facility from a layout; nothing is written if any part is refused.
    pub fn add_facility(&self, ctx: &Context, layout: &FacilityLayout) -> ServiceResult<FacilityCreated> {
        self.batch(|tx| add_facility_in(tx, ctx, layout))
    }

    /// Put a cell out of order (with a reason) or back in use, from now on.
    /// People placed in it stay recorded there; moving them is a separate decision.
    pub fn set_cell_status(&self, ctx: &Context, change: &CellStatusChange) -> ServiceResult<i64> {
        self.batch(|tx| set_cell_status_in(tx, ctx, change))
    }
}

/// Record a cell status change inside the caller's transaction.
pub fn set_cell_status_in<T: Tx>(tx: &mut T, ctx: &Context, change: &CellStatusChange) -> ServiceResult<i64> {
    let reason = change.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if !change.in_use && reason.is_none() {
        return Err(ServiceError::field("reason", "is required to put a cell out of order"));
    }
    let facility = tx
        .facility_by_code(&change.facility)?
        .ok_or_else(|| ServiceError::NotFound { what: "facility", key: change.facility.clone() })?;
    let cell = tx
        .cell_by_code(facility.id, &change.cell, ctx.now)?
        .ok_or_else(|| ServiceError::NotFound { what: "cell", key: format!("{}/{}", change.facility, change.cell) })?;
    if cell.in_use == change.in_use {
        let state = if cell.in_use { "in use" } else { "out of order" };
        return Err(ServiceError::refused("estate.cell_status", format!("cell {} is already {state}", cell.code)));
    }
    tx.insert_cell_status(&NewCellStatus {
        cell: cell.id,
        in_use: change.in_use,
        reason: if change.in_use { None } else { reason.map(str::to_string) },
        effective_from: ctx.now,
    })?;
    let action = if change.in_use { "cell.in_use" } else { "cell.out_of_order" };
    audit(tx, ctx, action, &format!("{}/{}", change.facility, change.cell), change)
}
