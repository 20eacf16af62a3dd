//! `custodia ruleset`, `charge`, `court`, `hold`, `legal` and `alerts`: the legal safeguards.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand};

use domain::incident::NotificationMethod;
use domain::legal::{HoldKind, Seriousness};
use domain::text::{CountryCode, LongText, ShortText};
use domain::time::{parse_rfc3339, rfc3339, Instant};
use service::legal::{
    Alert, ChargeRequest, CourtRecordKind, CourtRecordRequest, HoldRequest, HoldView, NoticeDone, OverriddenMovement,
    OverrideAsk, VisitRequest,
};
use service::Context;

use crate::output::{csv_cell, Format};

fn choice<T: Copy + serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.replace('-', "_"))).map_err(|e| format!("`{text}`: {e}"))
}

/// A day (taken at noon UTC, the same local day in the Americas and Europe) or an RFC 3339 instant.
fn when(text: &str) -> Result<Instant, String> {
    match text.parse::<NaiveDate>() {
        Ok(day) => Ok(day.and_hms_opt(12, 0, 0).expect("noon exists").and_utc()),
        Err(_) => parse_rfc3339(text),
    }
}

/// Jurisdiction rule sets.
#[derive(Subcommand)]
pub enum RuleSetCommand {
    /// Show a rule set (the latest loaded version, or the one shipped: generic, sv).
    Show {
        /// Code, for example sv.
        code: String,
    },
    /// Load a new version from a TOML file; a broken file is refused naming the line and field.
    Load {
        /// The file.
        file: PathBuf,
    },
}

/// Record a charge of a person's current custody episode.
#[derive(Args)]
pub struct ChargeArgs {
    /// Person number.
    person: String,
    /// The offence.
    #[arg(long)]
    offence: ShortText,
    /// less-serious or serious.
    #[arg(long, value_parser = choice::<Seriousness>)]
    seriousness: Seriousness,
    /// Highest penalty the law sets, in years.
    #[arg(long)]
    max_penalty_years: Option<f64>,
    /// Court case number.
    #[arg(long)]
    case: Option<ShortText>,
}

/// Record a hearing, the reasons given, counsel, a production order or a pretrial extension.
#[derive(Args)]
pub struct CourtArgs {
    /// Person number.
    person: String,
    /// hearing, reasons-given, counsel, production-order or extension.
    #[arg(value_parser = choice::<CourtRecordKind>)]
    kind: CourtRecordKind,
    /// The day (YYYY-MM-DD).
    #[arg(long)]
    on: NaiveDate,
    /// The court.
    #[arg(long)]
    court: Option<ShortText>,
    /// Ruling, order or case reference; the counsel's name for counsel.
    #[arg(long)]
    reference: Option<ShortText>,
    /// Months added (extensions).
    #[arg(long)]
    months: Option<u32>,
    /// Note.
    #[arg(long)]
    note: Option<LongText>,
}

/// Legal holds and their overrides.
#[derive(Subcommand)]
pub enum HoldCommand {
    /// Record a court's hold.
    Add {
        /// Person number.
        person: String,
        /// do-not-transfer, do-not-remove, do-not-release or produce-at-court.
        #[arg(long, value_parser = choice::<HoldKind>)]
        kind: HoldKind,
        /// Country removal to which is forbidden (do-not-remove).
        #[arg(long)]
        country: Option<CountryCode>,
        /// Day of the court appearance (produce-at-court).
        #[arg(long)]
        on_date: Option<NaiveDate>,
        /// The court or authority.
        #[arg(long)]
        authority: ShortText,
        /// The order's reference.
        #[arg(long)]
        order: ShortText,
        /// Until when (RFC 3339).
        #[arg(long, value_parser = parse_rfc3339)]
        until: Option<Instant>,
    },
    /// List holds with their overrides.
    List {
        /// Only this person's.
        #[arg(long)]
        person: Option<String>,
    },
    /// Lift a hold.
    End {
        /// Hold id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: LongText,
    },
    /// Ask to allow one movement despite a hold (a second person must approve).
    Override {
        /// Hold id.
        id: i64,
        /// transfer, release or removal.
        #[arg(long, value_parser = choice::<OverriddenMovement>)]
        movement: OverriddenMovement,
        /// Why.
        #[arg(long)]
        reason: LongText,
    },
    /// Approve an override asked for by someone else.
    Approve {
        /// Override id.
        id: i64,
    },
}

/// Family notification of admissions and transfers (Mandela Rule 68).
#[derive(Subcommand)]
pub enum FamilyCommand {
    /// Admissions and transfers whose family is not yet told, newest first.
    Notices {
        /// Since this day or instant (default: 30 days ago).
        #[arg(long, value_parser = when)]
        since: Option<Instant>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Record that the family was told of a movement (its id from `family notices`).
    Notified {
        /// Movement id.
        movement: i64,
        /// Who was told (name and relationship).
        #[arg(long)]
        notified: ShortText,
        /// phone, in-person, letter, email or other.
        #[arg(long, value_parser = choice::<NotificationMethod>)]
        method: NotificationMethod,
        /// When (RFC 3339); now when absent.
        #[arg(long, value_parser = parse_rfc3339)]
        at: Option<Instant>,
    },
}

/// Record a visit by legal counsel (never monitored).
#[derive(Args)]
pub struct VisitArgs {
    /// Person number.
    person: String,
    /// Counsel's name.
    #[arg(long)]
    counsel: ShortText,
    /// In what capacity (defence lawyer, public defender, consular officer…).
    #[arg(long)]
    capacity: ShortText,
    /// When it began (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339)]
    at: Instant,
    /// How long, in minutes.
    #[arg(long)]
    minutes: u32,
}

/// List open alerts.
#[derive(Args)]
pub struct AlertsArgs {
    /// The day (YYYY-MM-DD) or instant to look at; now when absent.
    #[arg(long, value_parser = when)]
    at: Option<Instant>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

fn hold_line(h: &HoldView) -> String {
    let hold = &h.hold;
    let what = match (hold.kind, &hold.country, hold.on_date) {
        (HoldKind::DoNotRemove, Some(c), _) => format!("do not remove to {c}"),
        (HoldKind::ProduceAtCourt, _, Some(d)) => format!("produce at court on {d}"),
        (kind, _, _) => kind.as_str().replace('_', " "),
    };
    let state = if h.in_force { "in force" } else { "not in force" };
    let mut line =
        format!("{:>5}  {:<18} {what} ({}, {}) {state}", hold.id, hold.person, hold.authority, hold.order_reference);
    for o in &h.overrides {
        let approval = match (&o.approved_by, o.used_by_movement) {
            (Some(by), Some(_)) => format!("approved by {by}, used"),
            (Some(by), None) => format!("approved by {by}"),
            (None, _) => "awaiting a second person".into(),
        };
        line.push_str(&format!(
            "\n         override {}: {} asked by {} ({approval}): {}",
            o.id, o.movement, o.requested_by, o.reason
        ));
    }
    line
}

/// Run a `ruleset` command.
pub fn run_rule_set(db: &str, ctx: &Context, command: RuleSetCommand) -> anyhow::Result<()> {
    let rules = match command {
        RuleSetCommand::Show { code } => crate::open(db)?.rule_set(&code)?,
        RuleSetCommand::Load { file } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            crate::open(db)?.load_rule_set(ctx, &text)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&rules)?);
    Ok(())
}

/// Run `charge`.
pub fn run_charge(db: &str, ctx: &Context, a: ChargeArgs) -> anyhow::Result<()> {
    let charge = ChargeRequest {
        offence: a.offence,
        seriousness: a.seriousness,
        max_penalty_years: a.max_penalty_years,
        court_case: a.case,
    };
    crate::open(db)?.record_charge(ctx, &a.person, &charge)?;
    println!("charge recorded for {}", a.person);
    Ok(())
}

/// Run `court`.
pub fn run_court(db: &str, ctx: &Context, a: CourtArgs) -> anyhow::Result<()> {
    let record = CourtRecordRequest {
        kind: a.kind,
        on: a.on,
        court: a.court,
        reference: a.reference,
        months: a.months,
        note: a.note,
    };
    crate::open(db)?.record_court(ctx, &a.person, &record)?;
    println!("court record added for {}", a.person);
    Ok(())
}

/// Run a `hold` command.
pub fn run_hold(db: &str, ctx: &Context, command: HoldCommand) -> anyhow::Result<()> {
    let service = crate::open(db)?;
    match command {
        HoldCommand::Add { person, kind, country, on_date, authority, order, until } => {
            let request = HoldRequest { kind, country, on_date, authority, order_reference: order, expires_at: until };
            let hold = service.add_hold(ctx, &person, &request)?;
            println!("hold {} recorded for {person}", hold.id);
        }
        HoldCommand::List { person } => {
            for hold in service.holds(person.as_deref(), ctx.now)? {
                println!("{}", hold_line(&hold));
            }
        }
        HoldCommand::End { id, reason } => {
            service.end_hold(ctx, id, &reason)?;
            println!("hold {id} lifted");
        }
        HoldCommand::Override { id, movement, reason } => {
            let asked = service.request_hold_override(ctx, id, &OverrideAsk { movement, reason })?;
            println!("override {} asked for; a second authorised person must approve it", asked.id);
        }
        HoldCommand::Approve { id } => {
            let approved = service.approve_hold_override(ctx, id)?;
            println!("override {id} approved: one {} of hold {} is allowed", approved.movement, approved.hold);
        }
    }
    Ok(())
}

/// Run `legal`.
pub fn run_legal(db: &str, ctx: &Context, person: &str) -> anyhow::Result<()> {
    let record = crate::open(db)?.legal_record(person, ctx.now)?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(())
}

/// Run `alerts`.
pub fn run_alerts(db: &str, ctx: &Context, a: AlertsArgs) -> anyhow::Result<()> {
    let at = a.at.unwrap_or(ctx.now);
    let alerts: Vec<Alert> = crate::open(db)?.alerts(at, |_| true)?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string(&alerts)?),
        Format::Csv => {
            println!("kind,person,facility,date,detail");
            for x in &alerts {
                println!(
                    "{},{},{},{},{}",
                    x.kind.as_str(),
                    csv_cell(&x.person),
                    csv_cell(&x.facility),
                    x.date,
                    csv_cell(&x.detail)
                );
            }
        }
        Format::Table => {
            for x in &alerts {
                println!("{:<20} {:<18} {:<8} {}  {}", x.kind.as_str(), x.person, x.facility, x.date, x.detail);
            }
            println!("{} open alerts at {}", alerts.len(), rfc3339(at));
        }
    }
    Ok(())
}

/// Run a `family` command.
pub fn run_family(db: &str, ctx: &Context, command: FamilyCommand) -> anyhow::Result<()> {
    let service = crate::open(db)?;
    match command {
        FamilyCommand::Notices { since, limit } => {
            let since = since.unwrap_or(ctx.now - chrono::Duration::days(30));
            for n in service.family_notices(|_| true, since, limit)? {
                println!(
                    "{:>9}  {:<18} {:<12} {:<8} {}",
                    n.movement,
                    n.person,
                    n.event,
                    n.facility,
                    rfc3339(n.occurred_at)
                );
            }
        }
        FamilyCommand::Notified { movement, notified, method, at } => {
            service.record_family_notice(ctx, movement, &NoticeDone { notified, method, at })?;
            println!("family notice of movement {movement} recorded");
        }
    }
    Ok(())
}

/// Run `visit`.
pub fn run_visit(db: &str, ctx: &Context, a: VisitArgs) -> anyhow::Result<()> {
    let visit = VisitRequest { counsel: a.counsel, capacity: a.capacity, started_at: a.at, minutes: a.minutes };
    crate::open(db)?.record_legal_visit(ctx, &a.person, &visit)?;
    println!("legal visit to {} recorded (never monitored)", a.person);
    Ok(())
}
