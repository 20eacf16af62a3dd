//! `custodia housing`, `classify`, `group`, `keep-apart`, `allocate` and `count`: the housing
//! rules, the allocation of a night's intake and roll counts.

use chrono::NaiveDate;
use clap::{Args, Subcommand};

use domain::person::Sex;
use domain::separation::{AgeGroup, CapacityLine, Designation, LegalStatus, Regime, Scope, SecurityLevel};
use domain::text::{Code, LongText, ShortText};
use domain::time::{parse_rfc3339, rfc3339};
use service::allocate::{AllocateRequest, Allocation};
use service::count::{CellCount, CountView, Explanation, Resolve, StartCount};
use service::housing::{
    AffiliationRequest, ClassifyRequest, KeepApartRequest, KeepApartView, OverrideRequest, PartyRef, PolicyRequest,
};
use service::Context;

use crate::output::{csv_cell, Format};

fn parsed<T: Copy>(all: &'static [T], name: fn(T) -> &'static str) -> impl Fn(&str) -> Result<T, String> + Clone {
    move |text| {
        all.iter().copied().find(|v| name(*v) == text).ok_or_else(|| {
            format!("`{text}` is not one of: {}", all.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", "))
        })
    }
}

/// A capacity line chosen on the command line, or `none`.
#[derive(Clone, Copy)]
pub struct LineChoice(Option<CapacityLine>);

fn line(text: &str) -> Result<LineChoice, String> {
    if text == "none" {
        return Ok(LineChoice(None));
    }
    parsed(CapacityLine::ALL, CapacityLine::as_str)(text).map(|l| LineChoice(Some(l))).map_err(|e| format!("{e}, none"))
}

fn sex(text: &str) -> Result<Sex, String> {
    parsed(&[Sex::Male, Sex::Female, Sex::Other], Sex::as_str)(text)
}

fn age(text: &str) -> Result<AgeGroup, String> {
    parsed(&[AgeGroup::Young, AgeGroup::Adult], AgeGroup::as_str)(text)
}

fn status(text: &str) -> Result<LegalStatus, String> {
    parsed(&[LegalStatus::Untried, LegalStatus::Convicted, LegalStatus::Other], LegalStatus::as_str)(text)
}

fn regime(text: &str) -> Result<Regime, String> {
    parsed(&[Regime::Criminal, Regime::Civil], Regime::as_str)(text)
}

fn security(text: &str) -> Result<SecurityLevel, String> {
    parsed(SecurityLevel::ALL, SecurityLevel::as_str)(text)
}

fn scope(text: &str) -> Result<Scope, String> {
    parsed(Scope::ALL, Scope::as_str)(text)
}

fn instant(text: &str) -> Result<domain::time::Instant, String> {
    parse_rfc3339(text)
}

/// A facility's housing rules.
#[derive(Subcommand)]
pub enum HousingCommand {
    /// Choose the capacity placements may not exceed, and the age of adulthood.
    Policy {
        /// Facility code.
        facility: String,
        /// declared, operational, beds, icrc, cpt or none.
        #[arg(long, value_parser = line)]
        line: Option<LineChoice>,
        /// Age from which people count as adults (default 18).
        #[arg(long)]
        adult_age: Option<u32>,
    },
    /// Record a director's override allowing placements over the capacity line until a time.
    Override {
        /// Facility code.
        facility: String,
        /// Why it is necessary.
        #[arg(long)]
        reason: LongText,
        /// Until when (RFC 3339), at most a year ahead.
        #[arg(long, value_parser = instant)]
        until: domain::time::Instant,
        /// One cell only.
        #[arg(long)]
        cell: Option<String>,
    },
    /// List capacity overrides, newest first.
    Overrides {
        /// Only this facility's.
        #[arg(long)]
        facility: Option<String>,
    },
    /// Designate a unit for categories; with no category, lift the designation.
    Designate {
        /// Facility code.
        facility: String,
        /// Unit code.
        unit: String,
        /// male, female or other.
        #[arg(long, value_parser = sex)]
        sex: Option<Sex>,
        /// young or adult.
        #[arg(long, value_parser = age)]
        age: Option<AgeGroup>,
        /// untried, convicted or other.
        #[arg(long, value_parser = status)]
        status: Option<LegalStatus>,
        /// criminal or civil.
        #[arg(long, value_parser = regime)]
        regime: Option<Regime>,
    },
}

/// Classify a person (Mandela Rule 11 categories, security level, vulnerabilities).
#[derive(Args)]
pub struct ClassifyArgs {
    /// Person number.
    person: String,
    /// untried, convicted or other.
    #[arg(long, value_parser = status)]
    status: LegalStatus,
    /// criminal or civil.
    #[arg(long, value_parser = regime, default_value = "criminal")]
    regime: Regime,
    /// low, medium, high or maximum.
    #[arg(long, value_parser = security, default_value = "medium")]
    security: SecurityLevel,
    /// A vulnerability flag (repeatable), for example `elderly`.
    #[arg(long = "vulnerability")]
    vulnerabilities: Vec<Code>,
    /// Note.
    #[arg(long)]
    note: Option<LongText>,
}

/// Security threat groups and affiliations.
#[derive(Subcommand)]
pub enum GroupCommand {
    /// Record a group.
    Add {
        /// Short code, for example MS13.
        code: Code,
        /// Name.
        name: ShortText,
    },
    /// List groups.
    List,
    /// Record a person's affiliation with a group (or its end with --ended).
    Affiliate {
        /// Person number.
        person: String,
        /// Group code.
        group: Code,
        /// Where the information comes from.
        #[arg(long)]
        source: ShortText,
        /// Date of the assessment (YYYY-MM-DD).
        #[arg(long)]
        assessed: NaiveDate,
        /// The person is no longer affiliated.
        #[arg(long)]
        ended: bool,
    },
}

/// Keep-apart rules.
#[derive(Subcommand)]
pub enum KeepApartCommand {
    /// Record a rule between two parties, each a person (P:NUMBER) or a group (G:CODE).
    Add {
        /// One side: P:NUMBER or G:CODE.
        a: String,
        /// The other side: P:NUMBER or G:CODE.
        b: String,
        /// cell, unit or facility.
        #[arg(long, value_parser = scope)]
        scope: Scope,
        /// Why.
        #[arg(long)]
        reason: LongText,
        /// Who authorised it (default: the recording user).
        #[arg(long)]
        authorised_by: Option<ShortText>,
        /// Until when (RFC 3339); indefinite when absent.
        #[arg(long, value_parser = instant)]
        until: Option<domain::time::Instant>,
    },
    /// List rules, in force or not.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Lift a rule before its expiry.
    End {
        /// Rule id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// Place a facility's unplaced people in cells.
#[derive(Args)]
pub struct AllocateArgs {
    /// Facility code.
    #[arg(long)]
    facility: String,
    /// Only these people (repeatable); every unplaced person when absent.
    #[arg(long = "person")]
    people: Vec<String>,
    /// Show the plan without recording it.
    #[arg(long)]
    dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Roll counts.
#[derive(Subcommand)]
pub enum CountCommand {
    /// Start a count of a facility or unit now.
    Start {
        /// Facility code.
        facility: String,
        /// Only this unit.
        #[arg(long)]
        unit: Option<String>,
    },
    /// Enter what was counted: CELL=N pairs (a cell entered again is a recount).
    Enter {
        /// Count number.
        id: i64,
        /// CELL=N, for example M1-01=42.
        #[arg(required = true)]
        counts: Vec<String>,
    },
    /// Explain a person missing from their cell.
    Resolve {
        /// Count number.
        id: i64,
        /// Person number.
        person: String,
        /// The cell they were found in (the move is recorded unless --returned).
        #[arg(long, group = "explanation")]
        found_in: Option<String>,
        /// They were returned to their own cell at once.
        #[arg(long, requires = "found_in")]
        returned: bool,
        /// Nobody knows where they are: opens an escape incident.
        #[arg(long, group = "explanation")]
        unaccounted: bool,
        /// They left the cell on the record after the count started (court, transfer, move).
        #[arg(long, group = "explanation")]
        moved_on_record: bool,
        /// They came into this cell on the record after the count started.
        #[arg(long, group = "explanation")]
        arrived_in: Option<String>,
        /// Note.
        #[arg(long)]
        note: Option<LongText>,
    },
    /// Clear a count once every cell is counted and reconciled.
    Clear {
        /// Count number.
        id: i64,
    },
    /// Show a count.
    Show {
        /// Count number.
        id: i64,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// List counts, newest first.
    List {
        /// Only this facility's.
        #[arg(long)]
        facility: Option<String>,
    },
}

fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Run a `housing` command.
pub fn run_housing(db: &str, ctx: &Context, command: HousingCommand) -> anyhow::Result<()> {
    let service = crate::open(db)?;
    match command {
        HousingCommand::Policy { facility, line, adult_age } => {
            let capacity_line = match line {
                Some(LineChoice(chosen)) => chosen,
                None => service.housing_policy(&facility, ctx.now)?.capacity_line,
            };
            let policy = service.set_housing_policy(ctx, &facility, &PolicyRequest { capacity_line, adult_age })?;
            println!(
                "{facility}: capacity line {}, adults from {}",
                policy.capacity_line.map(CapacityLine::as_str).unwrap_or("none"),
                policy.adult_age
            );
        }
        HousingCommand::Override { facility, reason, until, cell } => {
            let o = service.record_override(ctx, &facility, &OverrideRequest { cell, reason, expires_at: until })?;
            println!(
                "override {} for {} until {}",
                o.id,
                o.cell.as_deref().unwrap_or(&o.facility),
                rfc3339(o.expires_at)
            );
        }
        HousingCommand::Overrides { facility } => {
            let overrides = service.capacity_overrides(facility.map(|f| vec![f]).as_deref())?;
            println!("{:>5}  {:<8} {:<8} {:<20} {:<20} {:<12} reason", "id", "facility", "cell", "from", "until", "by");
            for o in overrides {
                println!(
                    "{:>5}  {:<8} {:<8} {:<20} {:<20} {:<12} {}",
                    o.id,
                    o.facility,
                    o.cell.as_deref().unwrap_or("all"),
                    rfc3339(o.effective_from),
                    rfc3339(o.expires_at),
                    o.authorised_by,
                    o.reason
                );
            }
        }
        HousingCommand::Designate { facility, unit, sex, age, status, regime } => {
            let designation = Designation { sex, age, status, regime };
            let d = service.designate_unit(ctx, &facility, &unit, &designation)?;
            println!("{facility}/{unit} designated for {}", d.describe());
        }
    }
    Ok(())
}

/// Run `classify`.
pub fn run_classify(db: &str, ctx: &Context, args: ClassifyArgs) -> anyhow::Result<()> {
    let request = ClassifyRequest {
        legal_status: args.status,
        regime: args.regime,
        security_level: args.security,
        vulnerabilities: args.vulnerabilities,
        note: args.note,
    };
    let classified = crate::open(db)?.classify(ctx, &args.person, &request)?;
    println!("{} is {}", classified.person, classified.category.describe());
    if !classified.cellmates_to_separate.is_empty() {
        println!(
            "move them: Mandela Rule 11 now keeps them apart from cellmates {}",
            classified.cellmates_to_separate.join(", ")
        );
    }
    Ok(())
}

/// Run a `group` command.
pub fn run_group(db: &str, ctx: &Context, command: GroupCommand) -> anyhow::Result<()> {
    let service = crate::open(db)?;
    match command {
        GroupCommand::Add { code, name } => {
            let group = service.add_group(ctx, &code, &name)?;
            println!("group {} recorded", group.code);
        }
        GroupCommand::List => {
            for group in service.groups()? {
                println!("{:<10} {}", group.code, group.name);
            }
        }
        GroupCommand::Affiliate { person, group, source, assessed, ended } => {
            let request = AffiliationRequest { group, affiliated: !ended, source, assessed_on: assessed };
            let history = service.affiliate(ctx, &person, &request)?;
            for a in history {
                let state = if a.affiliated { "affiliated" } else { "no longer affiliated" };
                println!("{person} {state} with {} (assessed {}, source: {})", a.group, a.assessed_on, a.source);
            }
        }
    }
    Ok(())
}

fn party(text: &str) -> anyhow::Result<PartyRef> {
    match text.split_once(':') {
        Some(("P", number)) => Ok(PartyRef { person: Some(number.to_string()), group: None }),
        Some(("G", code)) => Ok(PartyRef { person: None, group: Some(code.parse().map_err(anyhow::Error::msg)?) }),
        _ => anyhow::bail!("`{text}` is neither P:NUMBER (a person) nor G:CODE (a group)"),
    }
}

fn rule_line(r: &KeepApartView) -> String {
    let state = if r.in_force { "in force" } else { "ended" };
    let until = r.ended_at.or(r.expires_at).map(rfc3339).unwrap_or_else(|| "indefinite".into());
    format!(
        "{:>5}  {} / {}  {:<8} {:<9} until {until}  {} (authorised by {})",
        r.id,
        r.a,
        r.b,
        r.scope.as_str(),
        state,
        r.reason,
        r.authorised_by
    )
}

/// Run a `keep-apart` command.
pub fn run_keep_apart(db: &str, ctx: &Context, command: KeepApartCommand) -> anyhow::Result<()> {
    let service = crate::open(db)?;
    match command {
        KeepApartCommand::Add { a, b, scope, reason, authorised_by, until } => {
            let request =
                KeepApartRequest { a: party(&a)?, b: party(&b)?, scope, reason, authorised_by, expires_at: until };
            let recorded = service.add_keep_apart(ctx, &request)?;
            println!("{}", rule_line(&recorded.rule));
            for (x, y) in recorded.breaches_now {
                println!("already breached: {x} is within the scope of {y}; move one of them");
            }
        }
        KeepApartCommand::List { format } => {
            let rules = service.keep_apart_rules(ctx.now)?;
            match format {
                Format::Json => json(&rules)?,
                Format::Table | Format::Csv => rules.iter().for_each(|r| println!("{}", rule_line(r))),
            }
        }
        KeepApartCommand::End { id, reason } => println!("{}", rule_line(&service.end_keep_apart(ctx, id, &reason)?)),
    }
    Ok(())
}

/// Run `allocate`.
pub fn run_allocate(db: &str, ctx: &Context, args: AllocateArgs) -> anyhow::Result<()> {
    let request = AllocateRequest { people: (!args.people.is_empty()).then_some(args.people), dry_run: args.dry_run };
    let allocation = crate::open(db)?.allocate(ctx, &args.facility, &request)?;
    match args.format {
        Format::Json => json(&allocation),
        Format::Csv => {
            println!("person,cell,rule,reason");
            for p in &allocation.placed {
                println!("{},{},,", csv_cell(&p.person), csv_cell(&p.cell));
            }
            for u in &allocation.unplaced {
                println!("{},,{},{}", csv_cell(&u.person), csv_cell(&u.rule), csv_cell(&u.reason));
            }
            Ok(())
        }
        Format::Table => {
            allocation_table(&allocation);
            Ok(())
        }
    }
}

fn allocation_table(a: &Allocation) {
    for p in &a.placed {
        println!("{:<18} -> {}", p.person, p.cell);
    }
    for u in &a.unplaced {
        println!("{:<18} not placed ({}): {}", u.person, u.rule, u.reason);
    }
    println!(
        "{}: {} placed, {} not placed, highest cell occupancy {:.0} % of its line{}",
        a.facility,
        a.placed.len(),
        a.unplaced.len(),
        a.max_ratio * 100.0,
        if a.dry_run { " (dry run: nothing recorded)" } else { "" }
    );
}

fn count_table(c: &CountView) {
    println!(
        "count {} of {}{} at {} by {}: {}",
        c.id,
        c.facility,
        c.unit.as_ref().map(|u| format!("/{u}")).unwrap_or_default(),
        rfc3339(c.counted_at),
        c.started_by,
        c.state
    );
    println!("{:<10} {:>8} {:>8} {:>11}", "cell", "expected", "counted", "difference");
    for cell in &c.cells {
        let counted = cell.counted.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        let difference = cell.discrepancy.map(|d| format!("{d:+}")).unwrap_or_else(|| "-".into());
        println!("{:<10} {:>8} {:>8} {:>11}", cell.cell, cell.expected, counted, difference);
        for r in &cell.resolutions {
            let detail =
                r.found_in.as_deref().map(|f| format!("found in {f}")).or(r.incident.clone()).unwrap_or_default();
            println!("           {} {} {detail}", r.person, r.kind);
        }
    }
    println!("expected {}, counted {}", c.expected, c.counted);
    if !c.outstanding.is_empty() {
        let shown: Vec<&str> = c.outstanding.iter().take(12).map(String::as_str).collect();
        let more = c.outstanding.len() - shown.len();
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        println!("to count or reconcile: {}{more}", shown.join(", "));
    }
}

/// Run a `count` command.
pub fn run_count(db: &str, ctx: &Context, command: CountCommand) -> anyhow::Result<()> {
    let service = crate::open(db)?;
    match command {
        CountCommand::Start { facility, unit } => {
            count_table(&service.start_count(ctx, &StartCount { facility, unit })?)
        }
        CountCommand::Enter { id, counts } => {
            let mut entries = Vec::new();
            for pair in counts {
                let (cell, n) = pair.split_once('=').ok_or_else(|| anyhow::anyhow!("`{pair}` is not CELL=N"))?;
                let counted = n.parse().map_err(|_| anyhow::anyhow!("`{n}` in `{pair}` is not a number of people"))?;
                entries.push(CellCount { cell: cell.to_string(), counted });
            }
            count_table(&service.enter_counts(ctx, id, &entries)?);
        }
        CountCommand::Resolve { id, person, found_in, returned, unaccounted, moved_on_record, arrived_in, note } => {
            let explanation = match (found_in, arrived_in) {
                (Some(cell), _) => Explanation::FoundElsewhere { cell, returned },
                (_, Some(cell)) => Explanation::ArrivedOnRecord { cell },
                _ if moved_on_record => Explanation::MovedOnRecord,
                _ if unaccounted => Explanation::Unaccounted,
                _ => anyhow::bail!("say how: --found-in CELL, --unaccounted, --moved-on-record or --arrived-in CELL"),
            };
            count_table(&service.resolve_count(ctx, id, &Resolve { person, explanation, note })?);
        }
        CountCommand::Clear { id } => count_table(&service.clear_count(ctx, id)?),
        CountCommand::Show { id, format } => {
            let count = service.count(id, ctx.now)?;
            match format {
                Format::Json => json(&count)?,
                Format::Table | Format::Csv => count_table(&count),
            }
        }
        CountCommand::List { facility } => {
            for c in service.counts_of(facility.map(|f| vec![f]).as_deref(), i64::MAX, 100, ctx.now)? {
                println!(
                    "{:>5}  {:<8} {:<6} {}  {:<7} expected {:>6} counted {:>6}",
                    c.id,
                    c.facility,
                    c.unit.as_deref().unwrap_or("all"),
                    rfc3339(c.counted_at),
                    c.state,
                    c.expected,
                    c.counted
                );
            }
        }
    }
    Ok(())
}

/// Print keep-apart statistics.
pub fn keep_apart_statistics(db: &str, ctx: &Context, format: Format) -> anyhow::Result<()> {
    let stats = crate::open(db)?.keep_apart_statistics(|_| true, ctx.now)?;
    match format {
        Format::Json => json(&stats),
        Format::Csv => {
            println!("facility,held,affiliated,rules_naming_people_held");
            for f in &stats.facilities {
                println!("{},{},{},{}", csv_cell(&f.facility), f.held, f.affiliated, f.rules_naming_people_held);
            }
            Ok(())
        }
        Format::Table => {
            let scopes: Vec<String> =
                stats.by_scope.iter().map(|(s, n)| format!("{n} at {} scope", s.as_str())).collect();
            println!(
                "keep-apart rules in force: {} ({}), {} between groups, {} naming people; {} ended",
                stats.in_force,
                scopes.join(", "),
                stats.between_groups,
                stats.naming_people,
                stats.ended
            );
            println!("{:<8} {:>8} {:>11} {:>14}", "facility", "held", "affiliated", "rules naming");
            for f in &stats.facilities {
                println!("{:<8} {:>8} {:>11} {:>14}", f.facility, f.held, f.affiliated, f.rules_naming_people_held);
            }
            Ok(())
        }
    }
}
