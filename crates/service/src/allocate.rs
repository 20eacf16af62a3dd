//! Allocating a night's intake: every unplaced person of a facility (or a given batch) placed in
//! cells by `domain::allocation`, the plan checked by the independent checker, then each
//! placement recorded through the ordinary movement command, which checks every rule again.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use domain::allocation::{allocate, check, objective, Candidate, CellSlot, Instance};
use domain::separation::{Designation, Member, PersonId};
use domain::time::Instant;
use store::{Store, Tx};

use crate::custody::{record_movement_in, MovementKind, MovementRequest};
use crate::housing::category_from;
use crate::{audit, Context, Service, ServiceError, ServiceResult};

/// What to allocate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllocateRequest {
    /// Person numbers to place; every unplaced person of the facility when absent.
    #[serde(default)]
    pub people: Option<Vec<String>>,
    /// Show the plan without recording it.
    #[serde(default)]
    pub dry_run: bool,
}

/// One placement of the plan.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedPlacement {
    /// Person number.
    pub person: String,
    /// Cell code.
    pub cell: String,
}

/// Someone the plan could not place, and why.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotPlaced {
    /// Person number.
    pub person: String,
    /// The rule that stopped it.
    pub rule: String,
    /// Why, in words.
    pub reason: String,
}

/// The plan, recorded unless it was a dry run.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Allocation {
    /// Facility code.
    pub facility: String,
    /// Nothing was recorded.
    pub dry_run: bool,
    /// Placements, by person number.
    pub placed: Vec<PlannedPlacement>,
    /// People left unplaced with the reason.
    pub unplaced: Vec<NotPlaced>,
    /// Highest occupancy ratio of any cell after the plan, against the capacity line (or the
    /// declared places when the facility has no line).
    pub max_ratio: f64,
    /// Audit event of the allocation, when recorded.
    pub audit_seq: Option<i64>,
}

/// The instance of a facility now: its cells in use with their occupants, the people to place,
/// and the keep-apart rules in force.
pub fn instance_of<T: Tx>(
    tx: &mut T,
    facility: &store::Facility,
    people: Option<&[String]>,
    at: Instant,
) -> ServiceResult<(Instance, HashMap<PersonId, String>)> {
    let policy = tx.housing_policy(facility.id, at)?;
    let mut members: HashMap<PersonId, Member> = tx
        .category_facts_held(facility.id)?
        .into_iter()
        .map(|(person, facts)| {
            let category = category_from(&facts, policy.adult_age, at).category;
            (person, Member { person, category, groups: Vec::new() })
        })
        .collect();
    for (person, group) in tx.groups_held(facility.id)? {
        if let Some(member) = members.get_mut(&person) {
            member.groups.push(group);
        }
    }
    let mut occupants: HashMap<i64, Vec<Member>> = HashMap::new();
    for (cell, person) in tx.placed_now(facility.id, None, true)? {
        if let Some(member) = members.get(&person) {
            occupants.entry(cell).or_default().push(member.clone());
        }
    }
    let mut designations: HashMap<i64, Designation> = HashMap::new();
    let mut cells = Vec::new();
    for cell in tx.cells_at(at)?.into_iter().filter(|c| c.facility == facility.id) {
        let designation = match designations.get(&cell.unit) {
            Some(d) => *d,
            None => {
                let d = tx.unit_designation(cell.unit, at)?;
                designations.insert(cell.unit, d);
                d
            }
        };
        let line = policy.capacity_line.map(|line| line.cell_limit(&cell.dimensions, cell.rated_places));
        let limit = match line {
            Some(limit) if tx.override_in_force(facility.id, cell.id, at)?.is_none() => Some(limit),
            _ => None,
        };
        let balance_capacity =
            line.unwrap_or(if cell.rated_places > 0 { cell.rated_places } else { cell.dimensions.beds });
        cells.push(CellSlot {
            id: cell.id,
            code: cell.code,
            unit: cell.unit,
            facility: facility.id,
            single: cell.dimensions.single,
            in_use: cell.in_use,
            limit,
            balance_capacity,
            designation,
            occupants: occupants.remove(&cell.id).unwrap_or_default(),
        });
    }
    let unplaced = tx.unplaced_now(facility.id)?;
    let wanted: Vec<PersonId> = match people {
        None => unplaced,
        Some(numbers) => {
            let mut ids = Vec::new();
            for (i, number) in numbers.iter().enumerate() {
                let id = tx.person_id(number)?.filter(|id| unplaced.contains(id)).ok_or_else(|| {
                    ServiceError::field(
                        format!("people[{i}]"),
                        format!("{number} is not held unplaced in {}", facility.code),
                    )
                })?;
                ids.push(id);
            }
            ids
        }
    };
    let mut numbers = HashMap::new();
    let mut candidates = Vec::with_capacity(wanted.len());
    for person in wanted {
        let member =
            members.get(&person).cloned().ok_or_else(|| ServiceError::Internal("held person without facts".into()))?;
        numbers.insert(person, tx.person(person)?.map(|p| p.number).unwrap_or_default());
        candidates.push(Candidate { member, facility: facility.id });
    }
    let rules = tx
        .keep_apart_all()?
        .into_iter()
        .filter(|r| r.in_force(at))
        .map(|r| domain::separation::KeepApart { id: r.id, a: r.a, b: r.b, scope: r.scope })
        .collect();
    Ok((Instance { cells, people: candidates, rules }, numbers))
}

/// Allocate inside the caller's transaction.
pub fn allocate_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    facility_code: &str,
    request: &AllocateRequest,
) -> ServiceResult<Allocation> {
    let facility = tx
        .facility_by_code(facility_code)?
        .ok_or_else(|| ServiceError::NotFound { what: "facility", key: facility_code.to_string() })?;
    let (instance, numbers) = instance_of(tx, &facility, request.people.as_deref(), ctx.now)?;
    let plan = allocate(&instance);
    // The plan is never recorded unless a checker written apart from the allocator accepts it.
    let violations = check(&instance, &plan);
    if !violations.is_empty() {
        return Err(ServiceError::Internal(format!(
            "the allocation plan breaks {} rules: {:?}",
            violations.len(),
            violations[0]
        )));
    }
    let codes: HashMap<i64, &str> = instance.cells.iter().map(|c| (c.id, c.code.as_str())).collect();
    let number = |p: &PersonId| numbers.get(p).cloned().unwrap_or_default();
    let mut placed: Vec<PlannedPlacement> = plan
        .placements
        .iter()
        .map(|(p, c)| PlannedPlacement {
            person: number(p),
            cell: codes.get(c).copied().unwrap_or_default().to_string(),
        })
        .collect();
    placed.sort_by(|a, b| a.person.cmp(&b.person));
    let mut unplaced: Vec<NotPlaced> = plan
        .unplaced
        .iter()
        .map(|u| NotPlaced { person: number(&u.person), rule: u.rule.clone(), reason: u.reason.clone() })
        .collect();
    unplaced.sort_by(|a, b| a.person.cmp(&b.person));
    let max_ratio = objective(&instance, &plan).max_ratio;
    let mut allocation =
        Allocation { facility: facility.code, dry_run: request.dry_run, placed, unplaced, max_ratio, audit_seq: None };
    if request.dry_run {
        return Ok(allocation);
    }
    for placement in &allocation.placed {
        let request = MovementRequest {
            person: placement.person.clone(),
            kind: MovementKind::Place { cell: placement.cell.clone(), bed: None },
            at: Some(ctx.now),
            note: Some(crate::composed("note", "allocated".to_string())?),
        };
        record_movement_in(tx, ctx, &request)?;
    }
    let summary = serde_json::json!({
        "request": request,
        "placed": allocation.placed.len(),
        "unplaced": allocation.unplaced,
    });
    allocation.audit_seq = Some(audit(tx, ctx, "housing.allocate", facility_code, &summary)?);
    Ok(allocation)
}

impl<S: Store> Service<S> {
    /// Allocate a facility's unplaced people (or a batch of them) to cells; all or nothing.
    pub fn allocate(&self, ctx: &Context, facility: &str, request: &AllocateRequest) -> ServiceResult<Allocation> {
        if request.dry_run {
            return allocate_in(&mut self.store().read()?, ctx, facility, request);
        }
        self.batch(|tx| allocate_in(tx, ctx, facility, request))
    }
}
