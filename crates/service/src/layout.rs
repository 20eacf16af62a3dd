//! Facility layout files (TOML): a facility, its units and cells in one file, so that a
//! 256-cell facility is one command. Errors name the line and the field.
//!
//! ```toml
//! [facility]
//! code = "CECOT"
//! name = "Centro de Confinamiento del Terrorismo"
//! jurisdiction = "sv"
//! time_zone = "America/El_Salvador"
//! declared_capacity = 40000
//! # opened = "2023-01-31T00:00:00Z"   # optional: from when the facility exists in the records
//!
//! [[units]]
//! code = "M1"
//! name = "Módulo 1"
//!
//! [[units.cell_series]]          # cells M1-01 … M1-32, all alike
//! prefix = "M1-"
//! count = 32
//! floor_area_m2 = 100.0
//! sanitary_annex_m2 = 0.0
//! beds = 80
//!
//! [[units.cells]]                # or one cell at a time
//! code = "M1-ISO"
//! floor_area_m2 = 7.5
//! sanitary_annex_m2 = 1.0
//! beds = 1
//! single = true
//! out_of_order = "flooded"        # optional: the cell starts out of order, with this reason
//! ```

use serde::Deserialize;
use toml::Spanned;

use domain::estate::{validate_code, validate_time_zone, Area, CellDimensions};
use domain::time::Instant;
use domain::FieldError;

use crate::{ServiceError, ServiceResult};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    facility: FacilitySection,
    #[serde(default)]
    units: Vec<UnitSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FacilitySection {
    code: Spanned<String>,
    name: Spanned<String>,
    jurisdiction: Spanned<String>,
    time_zone: Spanned<String>,
    declared_capacity: u64,
    #[serde(default)]
    opened: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitSection {
    code: Spanned<String>,
    name: Option<String>,
    #[serde(default)]
    cells: Vec<CellEntry>,
    #[serde(default)]
    cell_series: Vec<CellSeries>,
}

// Leaf values are `Spanned` so that a problem found after parsing can name its line.
// (Spanned containers or `flatten` would hide the field path of type errors.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CellEntry {
    code: Spanned<String>,
    floor_area_m2: Spanned<f64>,
    #[serde(default)]
    sanitary_annex_m2: Option<Spanned<f64>>,
    beds: Spanned<u32>,
    #[serde(default)]
    single: bool,
    #[serde(default)]
    out_of_order: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CellSeries {
    prefix: Spanned<String>,
    count: Spanned<u32>,
    #[serde(default = "one")]
    first: u32,
    #[serde(default = "two")]
    digits: usize,
    floor_area_m2: Spanned<f64>,
    #[serde(default)]
    sanitary_annex_m2: Option<Spanned<f64>>,
    beds: Spanned<u32>,
    #[serde(default)]
    single: bool,
    #[serde(default)]
    out_of_order: Option<Spanned<String>>,
}

fn one() -> u32 {
    1
}
fn two() -> usize {
    2
}

/// The physical facts shared by a single cell entry and a series.
struct Shape<'a> {
    floor_area_m2: &'a Spanned<f64>,
    sanitary_annex_m2: &'a Option<Spanned<f64>>,
    beds: &'a Spanned<u32>,
    single: bool,
    out_of_order: &'a Option<Spanned<String>>,
}

/// A validated layout, ready to be written.
#[derive(Debug, Clone)]
pub struct FacilityLayout {
    /// Facility code.
    pub code: String,
    /// Facility name.
    pub name: String,
    /// Rule set.
    pub jurisdiction: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Declared capacity.
    pub declared_capacity: u64,
    /// From when it exists in the records; the time of the command when absent.
    pub opened: Option<Instant>,
    /// Units with their cells.
    pub units: Vec<UnitLayout>,
}

/// A unit of a layout.
#[derive(Debug, Clone)]
pub struct UnitLayout {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Cells.
    pub cells: Vec<CellLayout>,
}

/// A cell of a layout.
#[derive(Debug, Clone)]
pub struct CellLayout {
    /// Code, unique in the facility.
    pub code: String,
    /// Physical facts.
    pub dimensions: CellDimensions,
    /// Out of order from the start, with this reason.
    pub out_of_order: Option<String>,
}

pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

struct Problems<'t> {
    text: &'t str,
    errors: Vec<FieldError>,
}

impl Problems<'_> {
    fn add(&mut self, span: std::ops::Range<usize>, field: String, problem: impl Into<String>) {
        let line = line_of(self.text, span.start);
        self.errors.push(FieldError::new(format!("line {line}: {field}"), problem));
    }
}

impl FacilityLayout {
    /// Parse and check a layout file. Every problem is reported with its line and field.
    pub fn parse(text: &str) -> ServiceResult<Self> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| toml_error(text, "", &e))?;
        let file: LayoutFile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            toml_error(text, &path, e.inner())
        })?;
        let mut problems = Problems { text, errors: Vec::new() };
        let f = &file.facility;
        for (field, value) in
            [("facility.code", &f.code), ("facility.name", &f.name), ("facility.jurisdiction", &f.jurisdiction)]
        {
            if value.get_ref().trim().is_empty() {
                problems.add(value.span(), field.into(), "is required");
            }
        }
        if let Err(e) = validate_code("facility.code", f.code.get_ref()) {
            problems.add(f.code.span(), e.field, e.problem);
        }
        if let Err(e) = validate_time_zone("facility.time_zone", f.time_zone.get_ref()) {
            problems.add(f.time_zone.span(), e.field, e.problem);
        }
        let opened = match &f.opened {
            None => None,
            Some(text) => match domain::time::parse_rfc3339(text.get_ref()) {
                Ok(at) => Some(at),
                Err(e) => {
                    problems.add(text.span(), "facility.opened".into(), e);
                    None
                }
            },
        };
        if file.units.is_empty() {
            problems.errors.push(FieldError::new("units", "a facility needs at least one unit with cells"));
        }
        let mut units = Vec::new();
        let mut seen_units = std::collections::HashSet::new();
        let mut seen_cells = std::collections::HashSet::new();
        for (u, unit) in file.units.iter().enumerate() {
            let code = unit.code.get_ref().clone();
            if let Err(e) = validate_code("code", &code) {
                problems.add(unit.code.span(), format!("units[{u}].{}", e.field), e.problem);
            }
            if !seen_units.insert(code.clone()) {
                problems.add(unit.code.span(), format!("units[{u}].code"), format!("unit `{code}` appears twice"));
            }
            if unit.cells.is_empty() && unit.cell_series.is_empty() {
                problems.add(unit.code.span(), format!("units[{u}]"), "a unit needs at least one cell");
            }
            let mut cells = Vec::new();
            for (c, entry) in unit.cells.iter().enumerate() {
                let at = format!("units[{u}].cells[{c}]");
                let shape = Shape {
                    floor_area_m2: &entry.floor_area_m2,
                    sanitary_annex_m2: &entry.sanitary_annex_m2,
                    beds: &entry.beds,
                    single: entry.single,
                    out_of_order: &entry.out_of_order,
                };
                let dimensions = check_shape(&mut problems, &at, &shape);
                let code_ok = check_cell_code(&mut problems, &entry.code, &at, entry.code.get_ref(), &mut seen_cells);
                if let (Some(dimensions), true) = (dimensions, code_ok) {
                    cells.push(CellLayout {
                        code: entry.code.get_ref().clone(),
                        dimensions,
                        out_of_order: entry.out_of_order.as_ref().map(|r| r.get_ref().trim().to_string()),
                    });
                }
            }
            for (i, series) in unit.cell_series.iter().enumerate() {
                let at = format!("units[{u}].cell_series[{i}]");
                let count = *series.count.get_ref();
                if count == 0 || count > 10_000 {
                    problems.add(series.count.span(), format!("{at}.count"), "must be between 1 and 10000");
                    continue;
                }
                let shape = Shape {
                    floor_area_m2: &series.floor_area_m2,
                    sanitary_annex_m2: &series.sanitary_annex_m2,
                    beds: &series.beds,
                    single: series.single,
                    out_of_order: &series.out_of_order,
                };
                let Some(dimensions) = check_shape(&mut problems, &at, &shape) else { continue };
                for n in series.first..series.first.saturating_add(count) {
                    let code = format!("{}{:0width$}", series.prefix.get_ref(), n, width = series.digits);
                    if !check_cell_code(&mut problems, &series.prefix, &at, &code, &mut seen_cells) {
                        break;
                    }
                    cells.push(CellLayout {
                        code,
                        dimensions,
                        out_of_order: series.out_of_order.as_ref().map(|r| r.get_ref().trim().to_string()),
                    });
                }
            }
            units.push(UnitLayout { name: unit.name.clone().unwrap_or_else(|| code.clone()), code, cells });
        }
        if !problems.errors.is_empty() {
            return Err(ServiceError::Invalid(problems.errors));
        }
        Ok(FacilityLayout {
            code: f.code.get_ref().clone(),
            name: f.name.get_ref().trim().to_string(),
            jurisdiction: f.jurisdiction.get_ref().trim().to_string(),
            time_zone: f.time_zone.get_ref().clone(),
            declared_capacity: f.declared_capacity,
            opened,
            units,
        })
    }

    /// Number of cells in all units.
    pub fn cell_count(&self) -> usize {
        self.units.iter().map(|u| u.cells.len()).sum()
    }
}

/// Check a cell's code and that it is not used twice in the facility.
fn check_cell_code(
    problems: &mut Problems<'_>,
    spanned: &Spanned<String>,
    at: &str,
    code: &str,
    seen: &mut std::collections::HashSet<String>,
) -> bool {
    if let Err(e) = validate_code("code", code) {
        problems.add(spanned.span(), format!("{at}.{}", e.field), e.problem);
        return false;
    }
    if !seen.insert(code.to_string()) {
        problems.add(spanned.span(), format!("{at}.code"), format!("cell `{code}` appears twice in the facility"));
        return false;
    }
    true
}

/// Check the physical facts of a cell (or of every cell of a series, once).
fn check_shape(problems: &mut Problems<'_>, at: &str, shape: &Shape<'_>) -> Option<CellDimensions> {
    let before = problems.errors.len();
    let mut area = |field: &str, value: Option<&Spanned<f64>>| -> Option<Area> {
        let Some(value) = value else { return Area::new(0.0).ok() };
        Area::new(*value.get_ref()).map_err(|e| problems.add(value.span(), format!("{at}.{field}"), e)).ok()
    };
    let floor_area = area("floor_area_m2", Some(shape.floor_area_m2));
    let sanitary_annex = area("sanitary_annex_m2", shape.sanitary_annex_m2.as_ref());
    if let Some(reason) = shape.out_of_order {
        if reason.get_ref().trim().is_empty() {
            problems.add(reason.span(), format!("{at}.out_of_order"), "needs a reason");
        }
    }
    let dimensions = CellDimensions {
        floor_area: floor_area?,
        sanitary_annex: sanitary_annex?,
        beds: *shape.beds.get_ref(),
        single: shape.single,
    };
    if let Err(e) = dimensions.validate() {
        let span = if e.field == "beds" {
            shape.beds.span()
        } else {
            shape.sanitary_annex_m2.as_ref().map(|a| a.span()).unwrap_or(shape.floor_area_m2.span())
        };
        problems.add(span, format!("{at}.{}", e.field), e.problem);
    }
    (problems.errors.len() == before).then_some(dimensions)
}

pub(crate) fn toml_error(text: &str, path: &str, e: &toml::de::Error) -> ServiceError {
    let line = e.span().map(|s| line_of(text, s.start));
    // toml's `Spanned` leaves an internal name in serde paths; users need only the field names.
    let path = path.replace(".$__serde_spanned_private_value", "").replace("$__serde_spanned_private_value", "");
    let path = path.as_str();
    let location = match (line, path) {
        (Some(line), "" | ".") => format!("line {line}"),
        (Some(line), path) => format!("line {line}: {path}"),
        (None, "" | ".") => "layout".to_string(),
        (None, path) => path.to_string(),
    };
    // The line as written helps where toml's message does not name the key ("duplicate key").
    let written = line.and_then(|l| text.lines().nth(l - 1)).map(str::trim).filter(|l| !l.is_empty());
    let problem = match written {
        Some(written) => format!("{} (`{written}`)", e.message().trim()),
        None => e.message().trim().to_string(),
    };
    ServiceError::field(location, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[facility]
code = "T1"
name = "Test"
jurisdiction = "generic"
time_zone = "UTC"
declared_capacity = 10

[[units]]
code = "A"

[[units.cell_series]]
prefix = "A-"
count = 3
floor_area_m2 = 9.0
sanitary_annex_m2 = 1.0
beds = 2

[[units.cells]]
code = "A-ISO"
floor_area_m2 = 6.0
beds = 1
single = true
out_of_order = "broken door"
"#;

    fn problem(text: &str) -> Vec<FieldError> {
        match FacilityLayout::parse(text) {
            Err(ServiceError::Invalid(errors)) => errors,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_good_layout_expands_series_and_single_cells() {
        let layout = FacilityLayout::parse(GOOD).unwrap();
        let codes: Vec<_> = layout.units[0].cells.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["A-ISO", "A-01", "A-02", "A-03"]);
        assert_eq!(layout.units[0].cells[0].out_of_order.as_deref(), Some("broken door"));
    }

    #[test]
    fn a_wrong_type_names_line_and_field() {
        let errors = problem(&GOOD.replace("beds = 2", "beds = \"two\""));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].field.starts_with("line 17"), "{errors:?}");
        assert!(errors[0].field.contains("beds"), "{errors:?}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let errors = problem(&GOOD.replace("floor_area_m2 = 6.0\n", ""));
        assert!(errors[0].to_string().contains("floor_area_m2"), "{errors:?}");
        assert!(errors[0].field.starts_with("line "), "{errors:?}");
    }

    #[test]
    fn semantic_problems_name_line_and_field() {
        let errors = problem(&GOOD.replace("sanitary_annex_m2 = 1.0", "sanitary_annex_m2 = -1.0"));
        assert_eq!(errors[0].field, "line 16: units[0].cell_series[0].sanitary_annex_m2");
        let errors = problem(&GOOD.replace("time_zone = \"UTC\"", "time_zone = \"Nowhere/Land\""));
        assert_eq!(errors[0].field, "line 6: facility.time_zone");
        let errors = problem(&GOOD.replace("beds = 1\n", "beds = 3\n"));
        assert!(errors[0].field.ends_with("units[0].cells[0].beds"), "{errors:?}");
    }

    #[test]
    fn unknown_keys_and_duplicates_are_refused() {
        let errors = problem(&GOOD.replace("beds = 2", "beds = 2\ncolour = \"red\""));
        assert!(errors[0].problem.contains("colour"), "{errors:?}");
        let errors = problem(&GOOD.replace("code = \"A-ISO\"", "code = \"A-01\""));
        assert!(errors[0].problem.contains("appears twice"), "{errors:?}");
    }
}
