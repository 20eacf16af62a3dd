//! A deterministic synthetic estate for newcomers, tests and benchmarks: Salvadoran facilities,
//! Spanish names, and years of custody history, all recorded through the ordinary commands.
//!
//! The same seed gives the same people, places and sequence of events. The history ends at the
//! start of the current UTC day, so times shift by whole days between days.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{Duration, NaiveDate, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use domain::custody::{OutReason, ReleaseReason};
use domain::estate::Area;
use domain::person::{
    Admission, Contact, Dependant, Identity, IdentityDocument, Injury, LegalBasis, LegalBasisKind, PersonName,
    PropertyItem, Sex,
};
use domain::time::Instant;
use store::{Store, Tx};

use crate::custody::{admit_in, record_movement_in, AdmitRequest, MovementKind, MovementRequest};
use crate::estate::add_facility_in;
use crate::layout::{CellLayout, FacilityLayout, UnitLayout};
use crate::{Context, Service, ServiceError, ServiceResult};

/// How big a demo to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Two small facilities, a few hundred people: for tests.
    Small,
    /// One facility shaped like CECOT: 8 units × 32 cells of 100 m² with 80 beds, 15,000 people.
    Cecot,
    /// 25 facilities, about 70,000 declared places, 120,000 people, three years of history.
    National,
    /// A national system the size of the United States' state prisons, for the scale tests of
    /// the PostgreSQL backend: 100 facilities, 2,000,000 people in custody (most admitted in the
    /// last few years), twenty years of history, about 20 million movements.
    Us,
}

/// The plan of one facility in the demo.
struct FacilityPlan {
    code: String,
    name: String,
    declared: u64,
    /// Units × cells per unit.
    units: usize,
    cells_per_unit: usize,
    cell_area: f64,
    annex: f64,
    beds: u32,
    /// People held there at the end of the history.
    population: u64,
    women: bool,
    /// Cells out of order at the end (the first N of the last unit).
    out_of_order: usize,
}

fn cecot(population: u64) -> FacilityPlan {
    FacilityPlan {
        code: "CECOT".into(),
        name: "Centro de Confinamiento del Terrorismo".into(),
        declared: 40_000,
        units: 8,
        cells_per_unit: 32,
        cell_area: 100.0,
        annex: 0.0,
        beds: 80,
        population,
        women: false,
        out_of_order: 0,
    }
}

/// Declared capacity and occupancy (percent) of the other 24 facilities of the national demo.
const NATIONAL: &[(&str, &str, u64, u64, bool)] = &[
    ("LAESP", "Centro Penal La Esperanza (Mariona)", 3_200, 300, false),
    ("IZAL", "Centro Penal de Izalco", 2_400, 298, false),
    ("ZACA", "Centro Penal de Zacatecoluca", 1_200, 280, false),
    ("QUEZ", "Centro Penal de Quezaltepeque", 1_400, 295, false),
    ("APAN", "Centro Penal de Apanteos", 2_000, 290, false),
    ("CIUDB", "Centro Penal de Ciudad Barrios", 1_500, 292, false),
    ("CHALA", "Centro Penal de Chalatenango", 900, 285, false),
    ("SMIG", "Centro Penal de San Miguel", 1_100, 300, false),
    ("USUL", "Centro Penal de Usulután", 700, 270, false),
    ("SVIC", "Centro Penal de San Vicente", 900, 276, false),
    ("SANTA", "Centro Penal de Santa Ana", 1_300, 288, false),
    ("SONS", "Centro Penal de Sonsonate", 800, 265, false),
    ("COJU", "Centro Penal de Cojutepeque", 700, 250, false),
    ("ILOB", "Centro Penal de Ilobasco", 900, 240, false),
    ("JUCU", "Centro Penal de Jucuapa", 500, 230, false),
    ("BERL", "Centro Penal de Berlín", 300, 210, false),
    ("STANA", "Centro Penal de Sensuntepeque", 450, 180, false),
    ("METAP", "Centro Penal de Metapán", 400, 150, false),
    ("SFGOT", "Centro Penal de San Francisco Gotera", 350, 120, false),
    ("LAUN", "Centro Penal de La Unión", 450, 95, false),
    ("GRANJ", "Granja Penitenciaria de Izalco", 1_500, 60, false),
    ("GRANS", "Granja Penitenciaria de Santa Ana", 1_250, 40, false),
    ("ILOP", "Centro de Readaptación para Mujeres de Ilopango", 2_200, 240, true),
    ("CDMUJ", "Centro Penal de Mujeres de Apanteos", 3_850, 140, true),
];

/// People in custody at the end of the national demo.
const NATIONAL_POPULATION: u64 = 120_000;
/// People the national demo admits and releases within the three years.
const NATIONAL_RELEASED: u64 = 95_000;

/// People in custody at the end of the `us` demo, and those released within its twenty years.
const US_POPULATION: u64 = 2_000_000;
const US_RELEASED: u64 = 200_000;
/// Mean time in custody (days) of the people held at the end of the `us` demo: admitted at any
/// time of twenty years, they would each have about 60 movements instead of about 10.
const US_HELD_MEAN_DAYS: f64 = 400.0;

/// What a demo builds: the facilities, the people released within the history, the length of
/// the history in days, and the mean time in custody of those held at the end (None: admitted
/// at any time of the history).
struct Plans {
    facilities: Vec<FacilityPlan>,
    released: u64,
    days: i64,
    held_mean_days: Option<f64>,
}

/// A facility of the national and `us` demos: `units` × `cells_per_unit` cells with beds
/// enough for the declared capacity, two cells out of order at the end.
fn regional(
    code: String,
    name: String,
    (declared, units, cells_per_unit): (u64, usize, usize),
    population: u64,
    women: bool,
) -> FacilityPlan {
    let beds = (declared as f64 / (units * cells_per_unit) as f64).ceil() as u32;
    FacilityPlan {
        code,
        name,
        declared,
        units,
        cells_per_unit,
        // Tighter than the ICRC 3.4 m² per person, as in most overcrowded systems.
        cell_area: (f64::from(beds) * 3.0).round(),
        annex: 2.0,
        beds,
        population,
        women,
        out_of_order: 2,
    }
}

fn plans(scale: Scale) -> Plans {
    match scale {
        Scale::Small => {
            let men = FacilityPlan {
                code: "PEQ-A".into(),
                name: "Centro Penal Pequeño A".into(),
                declared: 120,
                units: 2,
                cells_per_unit: 4,
                cell_area: 24.0,
                annex: 2.0,
                beds: 8,
                population: 150,
                women: false,
                out_of_order: 1,
            };
            let women = FacilityPlan {
                code: "PEQ-M".into(),
                name: "Centro Penal de Mujeres Pequeño".into(),
                declared: 40,
                units: 1,
                cell_area: 16.0,
                annex: 1.5,
                beds: 6,
                population: 30,
                women: true,
                out_of_order: 0,
                ..men
            };
            Plans { facilities: vec![men, women], released: 60, days: 120, held_mean_days: None }
        }
        Scale::Cecot => Plans { facilities: vec![cecot(15_000)], released: 0, days: 365, held_mean_days: None },
        Scale::National => {
            let mut plans = vec![cecot(0)];
            for &(code, name, declared, pct, women) in NATIONAL {
                let units = (declared as usize / 400).clamp(2, 10);
                plans.push(regional(code.into(), name.into(), (declared, units, 20), declared * pct / 100, women));
            }
            // CECOT holds the rest, so the total is exact.
            plans[0].population = NATIONAL_POPULATION - plans.iter().map(|p| p.population).sum::<u64>();
            Plans { facilities: plans, released: NATIONAL_RELEASED, days: 3 * 365, held_mean_days: None }
        }
        Scale::Us => {
            let mut plans = vec![cecot(0)];
            // 99 regional facilities of 5,000 to 29,800 places at 85 to 114 % (the first is
            // planned for 5,000 people, the size the who-is-in-this-facility target names, and
            // ends near it after transfers); one in ten holds women.
            for i in 0..99u64 {
                let declared = if i == 0 { 5_000 } else { 10_000 + (i * 37 % 100) * 200 };
                let pct = if i == 0 { 100 } else { 85 + i * 13 % 30 };
                let (code, name) = (format!("R{:03}", i + 1), format!("Centro Penal Regional {}", i + 1));
                plans.push(regional(code, name, (declared, 10, 40), declared * pct / 100, i % 10 == 9));
            }
            plans[0].population = US_POPULATION - plans.iter().map(|p| p.population).sum::<u64>();
            Plans { facilities: plans, released: US_RELEASED, days: 20 * 365, held_mean_days: Some(US_HELD_MEAN_DAYS) }
        }
    }
}

/// The facilities a demo of this scale builds, opened at `opened`; benchmarks build instances on them.
pub fn layouts(scale: Scale, opened: Instant) -> Vec<FacilityLayout> {
    plans(scale).facilities.iter().map(|plan| layout(plan, opened)).collect()
}

fn layout(plan: &FacilityPlan, opened: Instant) -> FacilityLayout {
    let units = (1..=plan.units)
        .map(|u| UnitLayout {
            code: format!("M{u}"),
            name: format!("Módulo {u}"),
            cells: (1..=plan.cells_per_unit)
                .map(|c| CellLayout {
                    code: format!("M{u}-{c:02}"),
                    dimensions: domain::estate::CellDimensions {
                        floor_area: Area::new(plan.cell_area).expect("demo areas are valid"),
                        sanitary_annex: Area::new(plan.annex).expect("demo areas are valid"),
                        beds: plan.beds,
                        single: false,
                    },
                    out_of_order: None,
                })
                .collect(),
        })
        .collect();
    FacilityLayout {
        code: plan.code.to_string(),
        name: plan.name.to_string(),
        jurisdiction: "sv".to_string(),
        time_zone: "America/El_Salvador".to_string(),
        declared_capacity: plan.declared,
        opened: Some(opened),
        units,
    }
}

/// What the demo built.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// Scale built.
    pub scale: Scale,
    /// Seed used.
    pub seed: u64,
    /// Start of the history.
    pub history_from: Instant,
    /// End of the history.
    pub history_to: Instant,
    /// Row counts.
    pub counts: store::Counts,
    /// People in custody at the end whose legal basis is a remand order (untried), percent.
    pub untried_pct: f64,
}

/// One scripted step of a person's custody.
#[derive(Clone)]
enum Step {
    Admit,
    Place { facility: usize },
    Move,
    Out(OutReason),
    Return,
    Transfer { to: usize },
    Receive { facility: usize },
    Release(ReleaseReason),
}

struct Script {
    /// Unique per person of the demo: makes their document number unique.
    serial: usize,
    number: Option<String>,
    /// Held under a judgment: placed only in cells kept for convicted people (Mandela Rule 11).
    convicted: bool,
    facility: usize,
    cell: Option<(usize, Option<u32>)>,
    steps: Vec<(Instant, Step)>,
}

const GIVEN_MALE: &[&str] = &[
    "José",
    "Juan",
    "Carlos",
    "Luis",
    "Miguel",
    "Jorge",
    "Francisco",
    "Mario",
    "Óscar",
    "Roberto",
    "Ángel",
    "Kevin",
    "Jonathan",
    "Edwin",
    "Wilfredo",
    "Marvin",
    "René",
    "Nelson",
    "Rafael",
    "Walter",
    "Douglas",
    "Julio",
    "César",
    "Héctor",
    "Raúl",
    "Joaquín",
    "Ramón",
    "Andrés",
    "Álvaro",
    "Elías",
    "Nahúm",
    "Salvador",
    "Tomás",
    "Jesús",
    "Efraín",
    "Iván",
];
const GIVEN_FEMALE: &[&str] = &[
    "María",
    "Ana",
    "Rosa",
    "Carmen",
    "Sonia",
    "Gloria",
    "Marta",
    "Patricia",
    "Claudia",
    "Verónica",
    "Sofía",
    "Jimena",
    "Raquel",
    "Beatriz",
    "Inés",
    "Lucía",
    "Mónica",
    "Reina",
    "Yesenia",
    "Xiomara",
    "Zulma",
    "Elena",
    "Dolores",
    "Concepción",
];
const SURNAMES: &[&str] = &[
    "Hernández",
    "García",
    "Martínez",
    "López",
    "González",
    "Rodríguez",
    "Pérez",
    "Ramírez",
    "Flores",
    "Rivera",
    "Sánchez",
    "Cruz",
    "Romero",
    "Reyes",
    "Díaz",
    "Torres",
    "Mejía",
    "Guzmán",
    "Castillo",
    "Ramos",
    "Chávez",
    "Menjívar",
    "Orellana",
    "Alvarado",
    "Portillo",
    "Ayala",
    "Guevara",
    "Henríquez",
    "Argueta",
    "Quintanilla",
    "Peña",
    "Núñez",
    "Fuentes",
    "Ibáñez",
    "Muñoz",
    "Bonilla",
    "Escobar",
    "Villalta",
    "Aguilar",
    "Zelaya",
];
const PLACES: &[&str] = &[
    "San Salvador",
    "Soyapango",
    "Mejicanos",
    "Apopa",
    "Santa Ana",
    "San Miguel",
    "Ilopango",
    "Santa Tecla",
    "Ciudad Delgado",
    "Cuscatancingo",
    "Usulután",
    "Sonsonate",
    "Zacatecoluca",
    "La Unión",
    "Ahuachapán",
    "Chalatenango",
    "San Vicente",
];
const COURTS: &[&str] = &[
    "Juzgado Especializado de Instrucción A, San Salvador",
    "Juzgado Especializado de Sentencia B, San Salvador",
    "Juzgado Primero de Paz de Soyapango",
    "Tribunal de Sentencia de Santa Ana",
    "Juzgado de Instrucción de San Miguel",
];
const PROPERTY: &[&str] =
    &["reloj", "billetera", "cinturón", "teléfono móvil", "cadena", "llaves", "documentos personales"];

fn at_day(start: Instant, days: f64) -> Instant {
    start + Duration::seconds((days * 86_400.0) as i64)
}

impl<S: Store> Service<S> {
    /// Build the demo in one transaction on an empty database. `progress` receives (stage, done, total).
    pub fn demo(
        &self,
        scale: Scale,
        seed: u64,
        progress: &mut dyn FnMut(&str, u64, u64),
    ) -> ServiceResult<DemoSummary> {
        let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        self.demo_until(scale, seed, today, progress)
    }

    /// As [`Service::demo`], with the end of the history given.
    pub fn demo_until(
        &self,
        scale: Scale,
        seed: u64,
        end: Instant,
        progress: &mut dyn FnMut(&str, u64, u64),
    ) -> ServiceResult<DemoSummary> {
        let Plans { facilities: plans, released, days, held_mean_days } = plans(scale);
        let start = end - Duration::days(days);
        let opened = start - Duration::days(1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut tx = self.store().write_bulk()?;
        if !tx.facilities()?.is_empty() {
            return Err(not_empty());
        }
        let system = Context::new("demo", opened);
        let mut cells_of = Vec::new();
        for plan in &plans {
            add_facility_in(&mut tx, &system, &layout(plan, opened))?;
            house(&mut tx, &system, plan)?;
            cells_of.push(CellPool::new(plan));
        }
        let mut next_renewal = opened;

        // Script every person's custody, then play all steps in time order through the commands.
        let span = days as f64;
        let women: Vec<usize> = (0..plans.len()).filter(|&i| plans[i].women).collect();
        let men: Vec<usize> = (0..plans.len()).filter(|&i| !plans[i].women).collect();
        let mut scripts = Vec::new();
        for (f, plan) in plans.iter().enumerate() {
            for _ in 0..plan.population {
                let admitted = match held_mean_days {
                    None => rng.random_range(0.0..span - 0.5),
                    Some(mean) => (span - 0.5 + rng.random_range(0.001f64..1.0).ln() * mean).max(0.0),
                };
                scripts.push(script(&mut rng, f, if plan.women { &women } else { &men }, start, admitted, span, None));
            }
        }
        let weights: Vec<u64> = plans.iter().map(|p| p.population.max(1)).collect();
        let total_weight: u64 = weights.iter().sum();
        for _ in 0..released {
            let mut pick = rng.random_range(0..total_weight);
            let f = weights
                .iter()
                .position(|w| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            let stay = (-rng.random_range(0.001f64..1.0).ln() * 120.0).clamp(1.0, span - 2.0);
            let admitted = rng.random_range(0.0..span - stay - 1.0);
            let group = if plans[f].women { &women } else { &men };
            scripts.push(script(&mut rng, f, group, start, admitted, span, Some(admitted + stay)));
        }
        let mut queue: BinaryHeap<Reverse<(Instant, usize, usize)>> =
            scripts.iter().enumerate().map(|(i, s)| Reverse((s.steps[0].0, i, 0))).collect();
        for (serial, script) in scripts.iter_mut().enumerate() {
            script.serial = serial;
        }
        let total_steps: u64 = scripts.iter().map(|s| s.steps.len() as u64).sum();
        let mut done = 0u64;
        let mut ctx = Context::new("demo", start);
        while let Some(Reverse((at, i, step))) = queue.pop() {
            while next_renewal <= at {
                renew_overrides(&mut tx, next_renewal, &plans)?;
                next_renewal += Duration::days(OVERRIDE_RENEWAL_DAYS);
            }
            ctx.now = at;
            play(&mut tx, &ctx, &mut rng, &plans, &mut cells_of, &mut scripts[i], step)?;
            if let Some((next, _)) = scripts[i].steps.get(step + 1) {
                queue.push(Reverse((*next, i, step + 1)));
            }
            done += 1;
            if done.is_multiple_of(8192) {
                progress("history", done, total_steps);
            }
        }
        progress("history", done, total_steps);
        // Some cells break down late in the history, to show operational below declared capacity.
        for (f, plan) in plans.iter().enumerate() {
            for c in 0..plan.out_of_order {
                let unit = plan.units;
                let cell = plan.cells_per_unit - c;
                ctx.now = end - Duration::hours(1 + c as i64);
                cells_of[f].set_out_of_order(&mut tx, &ctx, &plan.code, &format!("M{unit}-{cell:02}"))?;
            }
        }
        progress("commit", 0, 1);
        tx.commit()?;
        progress("commit", 1, 1);
        let mut read = self.store().read()?;
        let counts = read.counts()?;
        let untried_pct = read.untried_share()? * 100.0;
        Ok(DemoSummary {
            scale,
            seed,
            history_from: start,
            history_to: end,
            counts,
            untried_pct: (untried_pct * 10.0).round() / 10.0,
        })
    }
}

/// The refusal of a demo into a database that holds facilities.
pub(crate) fn not_empty() -> ServiceError {
    ServiceError::refused(
        "demo.empty_database",
        "the demo builds only into an empty database; choose another with --db",
    )
}

/// How often a director renews the capacity override of an overcrowded demo facility.
const OVERRIDE_RENEWAL_DAYS: i64 = 180;

/// Facilities held above 95 % of their declared capacity run under a director's override.
fn overcrowded(plan: &FacilityPlan) -> bool {
    plan.population * 100 > plan.declared * 95
}

/// Every demo facility holds placements to its declared capacity and designates its units for
/// men or women.
fn house<T: Tx>(tx: &mut T, ctx: &Context, plan: &FacilityPlan) -> ServiceResult<()> {
    use domain::separation::{CapacityLine, Designation};
    let policy = crate::housing::PolicyRequest { capacity_line: Some(CapacityLine::Declared), adult_age: None };
    crate::housing::set_policy_in(tx, ctx, &plan.code, &policy)?;
    let sex = if plan.women { Sex::Female } else { Sex::Male };
    for u in 1..=plan.units {
        let designation = Designation { sex: Some(sex), ..Designation::OPEN };
        crate::housing::designate_unit_in(tx, ctx, &plan.code, &format!("M{u}"), &designation)?;
    }
    Ok(())
}

/// Record the overrides of the overcrowded facilities for the next period, as their directors do.
fn renew_overrides<T: Tx>(tx: &mut T, at: Instant, plans: &[FacilityPlan]) -> ServiceResult<()> {
    let director = Context::new("demo-director", at);
    for plan in plans.iter().filter(|p| overcrowded(p)) {
        let request = crate::housing::OverrideRequest {
            cell: None,
            reason: valid("Régimen de excepción: population above declared capacity"),
            expires_at: at + Duration::days(OVERRIDE_RENEWAL_DAYS + 1),
        };
        crate::housing::record_override_in(tx, &director, &plan.code, &request)?;
    }
    Ok(())
}

/// Cells of one facility with free beds and room under the capacity line, tracked in memory so
/// that the demo chooses legal places.
struct CellPool {
    cells: usize,
    cells_per_unit: usize,
    free_beds: Vec<Vec<u32>>,
    out_of_order: Vec<bool>,
    /// People placed in each cell.
    held: Vec<u32>,
    /// Most each cell may hold under the declared capacity line; none under an override.
    limit: Vec<Option<u32>>,
}

/// Three cells in ten are kept for convicted people, the others for untried ones.
fn for_convicted(cell: usize) -> bool {
    matches!(cell % 10, 2 | 5 | 8)
}

impl CellPool {
    fn new(plan: &FacilityPlan) -> Self {
        let cells = plan.units * plan.cells_per_unit;
        let dimensions = domain::estate::CellDimensions {
            floor_area: Area::new(plan.cell_area).expect("demo areas are valid"),
            sanitary_annex: Area::new(plan.annex).expect("demo areas are valid"),
            beds: plan.beds,
            single: false,
        };
        let rated = domain::estate::apportion_declared(plan.declared, &vec![dimensions; cells]);
        Self {
            cells,
            cells_per_unit: plan.cells_per_unit,
            free_beds: (0..cells).map(|_| (1..=plan.beds).rev().collect()).collect(),
            out_of_order: vec![false; cells],
            held: vec![0; cells],
            limit: rated.iter().map(|r| (!overcrowded(plan)).then_some(*r as u32)).collect(),
        }
    }

    fn code(&self, cell: usize) -> String {
        format!("M{}-{:02}", cell / self.cells_per_unit + 1, cell % self.cells_per_unit + 1)
    }

    fn fits(&self, cell: usize, convicted: bool, avoid: Option<usize>) -> bool {
        !self.out_of_order[cell]
            && Some(cell) != avoid
            && for_convicted(cell) == convicted
            && self.limit[cell].is_none_or(|limit| self.held[cell] < limit)
    }

    /// A random cell in use other than `avoid` for the person's legal status with room under the
    /// line, and a free bed in it if there is one; none when every such cell is full.
    fn take(&mut self, rng: &mut ChaCha8Rng, avoid: Option<usize>, convicted: bool) -> Option<(usize, Option<u32>)> {
        let random = (0..64).map(|_| rng.random_range(0..self.cells)).find(|&c| self.fits(c, convicted, avoid));
        let cell = random.or_else(|| (0..self.cells).find(|&c| self.fits(c, convicted, avoid)))?;
        self.held[cell] += 1;
        Some((cell, self.free_beds[cell].pop()))
    }

    fn give_back(&mut self, place: Option<(usize, Option<u32>)>) {
        if let Some((cell, bed)) = place {
            self.held[cell] -= 1;
            if let Some(bed) = bed {
                self.free_beds[cell].push(bed);
            }
        }
    }

    fn set_out_of_order<T: Tx>(&mut self, tx: &mut T, ctx: &Context, facility: &str, code: &str) -> ServiceResult<()> {
        let index = (0..self.cells).find(|&c| self.code(c) == code).expect("demo cell exists");
        self.out_of_order[index] = true;
        crate::estate::set_cell_status_in(
            tx,
            ctx,
            &crate::estate::CellStatusChange {
                facility: facility.to_string(),
                cell: code.to_string(),
                in_use: false,
                reason: Some("water leak; repairs pending".into()),
            },
        )?;
        Ok(())
    }
}

/// A person's custody from admission to release (or to the end of the history).
fn script(
    rng: &mut ChaCha8Rng,
    facility: usize,
    same_group: &[usize],
    start: Instant,
    admitted: f64,
    span: f64,
    released: Option<f64>,
) -> Script {
    let until = released.unwrap_or(span);
    let mut steps = vec![(at_day(start, admitted), Step::Admit)];
    // A fifth arrive through another facility of the same group and are transferred.
    let first = if same_group.len() > 1 && rng.random_bool(0.2) {
        *same_group.choose(rng).expect("group not empty")
    } else {
        facility
    };
    let mut t = admitted + rng.random_range(0.01..0.2);
    steps.push((at_day(start, t), Step::Place { facility: first }));
    if first != facility {
        let when = t + rng.random_range(1.0..((until - t) / 2.0).max(1.5));
        if when + 0.5 < until {
            // Court hearings before the transfer happen at the first facility.
            trips(rng, &mut steps, start, t, when);
            steps.push((at_day(start, when), Step::Transfer { to: facility }));
            steps.push((at_day(start, when + 0.2), Step::Receive { facility }));
            steps.push((at_day(start, when + 0.25), Step::Place { facility }));
            t = when + 0.25;
        }
    }
    t = trips(rng, &mut steps, start, t, until - 0.1);
    if let Some(end) = released {
        let reason = *[
            ReleaseReason::Bail,
            ReleaseReason::SentenceServed,
            ReleaseReason::ChargesDropped,
            ReleaseReason::Acquittal,
        ]
        .choose(rng)
        .expect("not empty");
        steps.push((at_day(start, end.max(t + 0.01)), Step::Release(reason)));
    }
    Script { serial: 0, number: None, convicted: false, facility: first, cell: None, steps }
}

/// Court hearings (out and back), hospital visits and cell moves between `from` and `until`.
fn trips(rng: &mut ChaCha8Rng, steps: &mut Vec<(Instant, Step)>, start: Instant, from: f64, until: f64) -> f64 {
    let (mut t, mut last) = (from, from);
    loop {
        t += rng.random_range(40.0..160.0);
        if t + 0.5 >= until {
            return last;
        }
        let roll: f64 = rng.random();
        if roll < 0.75 {
            let reason = if roll < 0.7 { OutReason::Court } else { OutReason::Hospital };
            last = t + rng.random_range(0.2..0.45);
            steps.push((at_day(start, t), Step::Out(reason)));
            steps.push((at_day(start, last), Step::Return));
        } else {
            last = t;
            steps.push((at_day(start, t), Step::Move));
        }
    }
}

fn play<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    rng: &mut ChaCha8Rng,
    plans: &[FacilityPlan],
    cells: &mut [CellPool],
    script: &mut Script,
    step: usize,
) -> ServiceResult<()> {
    let kind = match script.steps[step].1.clone() {
        Step::Admit => {
            let plan = &plans[script.facility];
            let admission = person(rng, plan.women, ctx.now, script.serial);
            script.convicted = admission.legal_basis.as_ref().is_some_and(|b| b.kind == LegalBasisKind::Judgment);
            let admitted = admit_in(
                tx,
                ctx,
                &AdmitRequest {
                    facility: plan.code.to_string(),
                    person: None,
                    at: None,
                    foreign: None,
                    different_person: None,
                    admission,
                },
            )?;
            script.number = Some(admitted.person);
            return Ok(());
        }
        Step::Place { facility } => {
            script.facility = facility;
            // With every fitting cell at the capacity line the person waits unplaced, as in life.
            let Some((cell, bed)) = cells[facility].take(rng, None, script.convicted) else { return Ok(()) };
            script.cell = Some((cell, bed));
            MovementKind::Place { cell: cells[facility].code(cell), bed: bed.map(|b| b.to_string()) }
        }
        Step::Move => {
            let pool = &mut cells[script.facility];
            let Some(current) = script.cell else { return Ok(()) };
            let Some((cell, bed)) = pool.take(rng, Some(current.0), script.convicted) else { return Ok(()) };
            pool.give_back(script.cell.replace((cell, bed)));
            MovementKind::Move { cell: pool.code(cell), bed: bed.map(|b| b.to_string()) }
        }
        Step::Out(reason) => MovementKind::Out { reason },
        Step::Return => MovementKind::Return,
        Step::Transfer { to } => {
            cells[script.facility].give_back(script.cell.take());
            MovementKind::Transfer { to: plans[to].code.to_string() }
        }
        Step::Receive { facility } => {
            script.facility = facility;
            MovementKind::Receive { facility: plans[facility].code.to_string() }
        }
        Step::Release(reason) => {
            cells[script.facility].give_back(script.cell.take());
            MovementKind::Release { reason, to_country: None }
        }
    };
    let person = script.number.clone().expect("admitted before any movement");
    record_movement_in(tx, ctx, &MovementRequest { person, kind, at: None, note: None })?;
    Ok(())
}

/// A synthetic person with a complete Mandela Rule 7 admission record.
/// A new person's admission record; `serial` makes their document number unique, since an
/// admission with another person's document is refused.
fn person(rng: &mut ChaCha8Rng, woman: bool, at: Instant, serial: usize) -> Admission {
    let given = if woman { GIVEN_FEMALE } else { GIVEN_MALE };
    let given_names = if rng.random_bool(0.7) {
        format!("{} {}", given.choose(rng).expect("names"), given.choose(rng).expect("names"))
    } else {
        given.choose(rng).expect("names").to_string()
    };
    let first_surname = SURNAMES.choose(rng).expect("names").to_string();
    let second_surname = rng.random_bool(0.93).then(|| SURNAMES.choose(rng).expect("names").to_string());
    let mut born =
        NaiveDate::from_ymd_opt(1960, 1, 1).expect("valid") + Duration::days(rng.random_range(0..(42 * 365)));
    // Every demo person is an adult of 21 or more when admitted, so that no cell mixes age
    // groups (Mandela Rule 11 d); only the twenty years of the `us` history reach back so far.
    while at.date_naive() < born + Duration::days(21 * 366) {
        born -= Duration::days(20 * 365);
    }
    let untried = rng.random_bool(0.7);
    let basis_date = at.date_naive() - Duration::days(rng.random_range(0..3));
    let family = SURNAMES.choose(rng).expect("names");
    Admission {
        identity: Identity {
            name: PersonName {
                given_names: valid(given_names),
                first_surname: valid(first_surname.clone()),
                second_surname: second_surname.map(valid),
            },
            date_of_birth: born,
            sex: if woman { Sex::Female } else { Sex::Male },
            gender_identity: None,
            nationality: if rng.random_bool(0.97) {
                valid("SV")
            } else {
                valid(*["GT", "HN", "NI"].choose(rng).expect("x"))
            },
            documents: vec![IdentityDocument {
                kind: valid("dui"),
                // 48271 is prime to 10^8, so distinct serials give distinct, scattered numbers.
                number: valid(format!(
                    "{:08}-{}",
                    (serial as u64 * 48_271 + 12_345) % 100_000_000,
                    rng.random_range(0..10)
                )),
                issuing_country: valid("SV"),
            }],
        },
        legal_basis: Some(LegalBasis {
            kind: if untried { LegalBasisKind::RemandOrder } else { LegalBasisKind::Judgment },
            issuing_authority: valid(*COURTS.choose(rng).expect("courts")),
            reference: valid(format!(
                "{}-{}-{:05}",
                if untried { "INS" } else { "SEN" },
                at.format("%Y"),
                rng.random_range(1..99_999)
            )),
            date: basis_date,
        }),
        arrested_at: at - Duration::hours(rng.random_range(6..96)),
        arrest_place: valid(*PLACES.choose(rng).expect("places")),
        injuries: if rng.random_bool(0.04) {
            vec![Injury { description: valid("hematoma"), location: Some(valid("brazo izquierdo")) }]
        } else {
            Vec::new()
        },
        complaints: Vec::new(),
        property: (0..rng.random_range(1..4))
            .map(|_| PropertyItem { description: valid(*PROPERTY.choose(rng).expect("items")), quantity: 1 })
            .collect(),
        next_of_kin: vec![Contact {
            name: valid(format!(
                "{} {first_surname} {family}",
                (if rng.random_bool(0.5) { GIVEN_FEMALE } else { GIVEN_MALE }).choose(rng).expect("names")
            )),
            relationship: valid(*["madre", "padre", "esposa", "hermano", "hermana"].choose(rng).expect("x")),
            phone: Some(valid(format!("+503 7{:03}-{:04}", rng.random_range(0..1000), rng.random_range(0..10_000)))),
            address: Some(valid(*PLACES.choose(rng).expect("places"))),
        }],
        emergency_contact: None,
        dependants: if rng.random_bool(0.4) {
            vec![Dependant {
                name: valid(format!("{} {first_surname}", GIVEN_FEMALE.choose(rng).expect("names"))),
                relationship: valid("hija"),
                date_of_birth: Some(at.date_naive() - Duration::days(rng.random_range(365..(15 * 365)))),
                care_arrangement: Some(valid("con la abuela")),
            }]
        } else {
            Vec::new()
        },
    }
}

/// A demo value of a type with rules; the demo's word lists keep to them.
fn valid<T: TryFrom<String, Error = String>>(text: impl Into<String>) -> T {
    T::try_from(text.into()).expect("demo values are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_us_plan_holds_two_million_people_in_a_hundred_facilities_one_of_five_thousand() {
        let Plans { facilities, released, days, .. } = plans(Scale::Us);
        assert_eq!(facilities.len(), 100);
        assert_eq!(facilities.iter().map(|p| p.population).sum::<u64>(), US_POPULATION);
        assert_eq!(facilities.iter().filter(|p| p.population == 5_000).count(), 1);
        let codes: std::collections::HashSet<_> = facilities.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes.len(), 100, "codes are unique");
        assert!(facilities.iter().any(|p| p.women) && facilities.iter().any(|p| !p.women));
        assert_eq!((released, days), (US_RELEASED, 20 * 365));
        assert_eq!(plans(Scale::National).held_mean_days, None, "the other scales are unchanged");
    }

    #[test]
    fn every_demo_person_is_an_adult_when_admitted_even_twenty_years_back() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let at = Utc.with_ymd_and_hms(2006, 12, 8, 0, 0, 0).unwrap();
        for serial in 0..2_000 {
            let born = person(&mut rng, serial % 2 == 0, at, serial).identity.date_of_birth;
            let age = at.date_naive().years_since(born).expect("born before admission");
            assert!((21..80).contains(&age), "{born} is {age} at {at}");
        }
    }
}
