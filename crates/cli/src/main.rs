#![forbid(unsafe_code)]
//! The `custodia` command: wires configuration -> store -> service, and prints results.

mod bench;
mod bench_allocate;
mod bench_identity;
mod bench_sentence;
mod housing;
mod identity;
mod incident;
mod legal;
mod output;
mod sentence;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use domain::custody::{OutReason, ReleaseReason};
use domain::time::{parse_rfc3339, Instant};
use service::custody::{AdmitRequest, MovementKind, MovementRequest};
use service::demo::Scale;
use service::estate::CellStatusChange;
use service::layout::FacilityLayout;
use service::report::Detail;
use service::staff::Role;
use service::{Context, Service, ServiceError};
use store::Database;

use output::Format;

/// Custodia: records, capacity and safeguards for prisons.
#[derive(Parser)]
#[command(name = "custodia", version, about)]
struct Cli {
    /// Database URL.
    #[arg(long, global = true, env = "CUSTODIA_DB", default_value = "sqlite://custodia.db")]
    db: String,
    /// Who is recording, as the audit history names them. The command line has no login (staff
    /// accounts are for the web interface and the API): whoever can open the database file acts
    /// here. Defaults to the operating-system user ($USER); required when that is not set.
    #[arg(long, global = true, env = "CUSTODIA_ACTOR")]
    actor: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database schema (or bring it up to date).
    Init,
    /// Copy a whole deployment into an empty database, on either backend (SQLite to PostgreSQL
    /// or back), in one transaction; then verify the copy and print its audit head, which is the
    /// source's. A target that already holds records is refused.
    Copy {
        /// The database to copy (it is only read).
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty database to copy into (a SQLite file is created).
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Back up the whole deployment into a new file (a Custodia SQLite database, its read
    /// register beside it as NAME.reads.EXT: keep the two together), from one instant while
    /// writers go on; verify it and print its audit head. Works on either backend.
    Backup {
        /// The new backup file; an existing file is refused, never replaced.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Restore a backup made by `custodia backup` into the empty database --db names (either
    /// backend); verify it and print its audit head, which is the one the backup printed.
    Restore {
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Build a deterministic synthetic estate with people and history, and print a summary.
    Demo {
        /// How big.
        #[arg(long, value_enum, default_value = "small")]
        scale: DemoScale,
        /// Seed of the generator; the same seed gives the same estate.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Do not start the server afterwards.
        #[arg(long)]
        no_serve: bool,
        /// Address to serve on afterwards.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Serve the HTTP API (and its OpenAPI document and Swagger UI) on this database.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Staff accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Facilities and their layout.
    Facility {
        #[command(subcommand)]
        command: FacilityCommand,
    },
    /// Put a cell out of order or back in use.
    Cell {
        #[command(subcommand)]
        command: CellCommand,
    },
    /// Admit a person from a JSON admission record (`-` reads standard input).
    Admit {
        /// JSON file with facility, identity, legal_basis, arrest, injuries, property, next of kin…
        file: PathBuf,
    },
    /// Record a movement of a person.
    Movement {
        /// Person number.
        person: String,
        #[command(subcommand)]
        kind: MovementCommand,
        /// When it happened (RFC 3339); now when absent.
        #[arg(long, global = true)]
        at: Option<String>,
        /// Free-text note.
        #[arg(long, global = true)]
        note: Option<domain::text::LongText>,
    },
    /// A person's record: identity, whereabouts, timeline.
    Person {
        /// Person number.
        number: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Where a person was at an instant.
    Where {
        /// Person number.
        person: String,
        /// The instant (RFC 3339), not in the future; now when absent.
        #[arg(long)]
        at: Option<String>,
    },
    /// Who was in a facility, unit or cell at an instant.
    Who {
        /// Facility code.
        #[arg(long)]
        facility: String,
        /// Unit code.
        #[arg(long)]
        unit: Option<String>,
        /// Cell code.
        #[arg(long)]
        cell: Option<String>,
        /// The instant (RFC 3339), not in the future; now when absent.
        #[arg(long)]
        at: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The tamper-evident history.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Housing rules of a facility: capacity line, overrides, unit designations.
    Housing {
        #[command(subcommand)]
        command: housing::HousingCommand,
    },
    /// Classify a person: Mandela Rule 11 categories, security level, vulnerabilities.
    Classify(housing::ClassifyArgs),
    /// Security threat groups and affiliations.
    Group {
        #[command(subcommand)]
        command: housing::GroupCommand,
    },
    /// Keep-apart rules between people and groups.
    KeepApart {
        #[command(subcommand)]
        command: housing::KeepApartCommand,
    },
    /// Place a facility's unplaced people in cells without breaking any rule.
    Allocate(housing::AllocateArgs),
    /// Roll counts.
    Count {
        #[command(subcommand)]
        command: housing::CountCommand,
    },
    /// Jurisdiction rule sets (pretrial limits, extensions, age of majority) as data.
    Ruleset {
        #[command(subcommand)]
        command: legal::RuleSetCommand,
    },
    /// Record a charge.
    Charge(legal::ChargeArgs),
    /// Record a hearing, reasons given, counsel, a production order or a pretrial extension.
    Court(legal::CourtArgs),
    /// Legal holds (do not transfer, remove, release; produce at court) and their overrides.
    Hold {
        #[command(subcommand)]
        command: legal::HoldCommand,
    },
    /// A person's legal record: status, charges, deadlines, release date, holds.
    Legal {
        /// Person number.
        person: String,
    },
    /// Open alerts: pretrial deadlines, release dates, unreceived transfers, overdue obligations.
    Alerts(legal::AlertsArgs),
    /// Family notification of admissions and transfers (Mandela Rule 68).
    Family {
        #[command(subcommand)]
        command: legal::FamilyCommand,
    },
    /// Record a visit by legal counsel (never monitored).
    Visit(legal::VisitArgs),
    /// Incidents and injuries.
    Incident {
        #[command(subcommand)]
        command: incident::IncidentCommand,
    },
    /// Notification obligations opened by deaths, disappearances and serious injuries.
    Obligation {
        #[command(subcommand)]
        command: incident::ObligationCommand,
    },
    /// Whether a person declines that their family be notified.
    Notification {
        #[command(subcommand)]
        command: incident::NotificationCommand,
    },
    /// Statistics.
    Statistics {
        #[command(subcommand)]
        command: incident::StatisticsCommand,
    },
    /// Sentences: release-date calculation.
    Sentence {
        #[command(subcommand)]
        command: sentence::SentenceCommand,
    },
    /// Identity resolution: candidates at intake, merges and un-merges of people's records, lineage.
    Identity {
        #[command(subcommand)]
        command: identity::IdentityCommand,
    },
    /// Benchmarks that print one JSON line per measure.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DemoScale {
    /// Two small facilities, a few hundred people.
    Small,
    /// One facility shaped like CECOT, 15,000 people, one year of history.
    Cecot,
    /// 25 facilities, 120,000 people, three years of history.
    National,
    /// 100 facilities, 2,000,000 people, twenty years of history (18 million movements; about
    /// 25 minutes and 15 GB of memory on the machine of docs/BENCHMARKS.md).
    Us,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff account. The password is read from standard input with --password-stdin,
    /// otherwise one is generated and printed.
    Add {
        /// Login name.
        name: String,
        /// admin, director, records, officer, medical, monitor or analyst.
        #[arg(long, value_parser = role)]
        role: Role,
        /// Facility the account is assigned to (repeat for several; none for national roles).
        #[arg(long = "facility")]
        facilities: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List staff accounts: name, role, facilities, disabled or not.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Disable an account: it cannot log in, its sessions end and its tokens are revoked.
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled account again (its old sessions and tokens stay ended).
    Enable {
        /// Login name.
        name: String,
    },
    /// Set an account's password, read from the first line of standard input (at least 12
    /// characters); its sessions end and its tokens are revoked.
    ResetPassword {
        /// Login name.
        name: String,
    },
    /// Replace the facilities an account works in (at least one for facility roles, none for
    /// national ones).
    SetFacilities {
        /// Login name.
        name: String,
        /// Facility code (repeat for several).
        #[arg(long = "facility")]
        facilities: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bearer token for a user; the token is printed alone on the last line.
    Create {
        /// Login name.
        #[arg(long)]
        user: String,
        /// Days until it expires.
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
    /// Revoke every token of a user.
    Revoke {
        /// Login name.
        #[arg(long)]
        user: String,
    },
}

fn role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| {
        let valid: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("`{text}` is not one of: {}", valid.join(", "))
    })
}

#[derive(Subcommand)]
enum FacilityCommand {
    /// Create a facility with its units, cells and beds from a TOML layout file.
    Add {
        /// Layout file.
        #[arg(long)]
        layout: PathBuf,
    },
    /// List facilities.
    List,
}

#[derive(Subcommand)]
enum CellCommand {
    /// Put a cell out of order, with the reason.
    OutOfOrder {
        /// Facility code.
        facility: String,
        /// Cell code.
        cell: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Put a cell back in use.
    InUse {
        /// Facility code.
        facility: String,
        /// Cell code.
        cell: String,
    },
}

#[derive(Subcommand)]
enum MovementCommand {
    /// First placement in a cell after admission or receipt.
    Place {
        /// Cell code.
        cell: String,
        /// Bed code.
        #[arg(long)]
        bed: Option<String>,
    },
    /// Move to another cell or bed.
    Move {
        /// Cell code.
        cell: String,
        /// Bed code.
        #[arg(long)]
        bed: Option<String>,
    },
    /// Leave the facility for a while.
    Out {
        /// Why: court, hospital, temporary_absence or escort.
        #[arg(long, value_parser = out_reason)]
        reason: OutReason,
    },
    /// Come back.
    Return,
    /// Send to another facility.
    Transfer {
        /// Receiving facility code.
        #[arg(long)]
        to: String,
    },
    /// Receive at the destination of a transfer.
    Receive {
        /// Receiving facility code.
        #[arg(long)]
        facility: String,
    },
    /// End custody.
    Release {
        /// Why: sentence_served, bail, acquittal, charges_dropped, court_order, pardon, handed_over, death or other.
        #[arg(long, value_parser = release_reason)]
        reason: ReleaseReason,
        /// Country the person is handed to (removal, deportation, extradition), checked against holds.
        #[arg(long)]
        to_country: Option<String>,
    },
}

/// Parse a reason code as the domain stores it (`-` accepted for `_`), listing the valid ones on error.
fn reason<T: Copy>(all: &'static [T], name: fn(T) -> &'static str) -> impl Fn(&str) -> Result<T, String> + Clone {
    move |text| {
        let code = text.replace('-', "_");
        all.iter().copied().find(|r| name(*r) == code).ok_or_else(|| {
            let valid: Vec<&str> = all.iter().map(|r| name(*r)).collect();
            format!("`{text}` is not one of: {}", valid.join(", "))
        })
    }
}

fn out_reason(text: &str) -> Result<OutReason, String> {
    reason(&OutReason::ALL, OutReason::as_str)(text)
}

fn release_reason(text: &str) -> Result<ReleaseReason, String> {
    reason(&ReleaseReason::ALL, ReleaseReason::as_str)(text)
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Population and occupancy against declared, operational, beds, ICRC and CPT capacity.
    Occupancy {
        /// The instant (RFC 3339), not in the future; now when absent.
        #[arg(long)]
        at: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Break down by unit or by cell as well.
        #[arg(long, value_enum, default_value = "facility")]
        detail: DetailArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DetailArg {
    Facility,
    Unit,
    Cell,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and every audited row; exits 3 and names the first broken event if any.
    Verify {
        /// An event's hash noted earlier (printed by a previous verify, or `audit list`), as SEQ:HASH;
        /// the check fails if that event is gone or different, which also catches a cut-off tail.
        #[arg(long, value_name = "SEQ:HASH")]
        expect: Vec<String>,
    },
    /// Print the newest event as SEQ:HASH, for monitors to note outside the database and give
    /// to `audit verify --expect` later.
    Head,
    /// List audit events.
    List {
        /// Start after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Exit 3 when what `verb` wrote does not verify (then neither does what it came from).
fn verified_or_exit(verb: &str, verified: &store::AuditVerification) -> anyhow::Result<()> {
    if verified.broken.is_some() || !verified.projection_problems.is_empty() {
        let message =
            format!("{verb}: the result does not verify: {verified:?}; run `custodia audit verify` on the source");
        return Err(Exit(3, message).into());
    }
    Ok(())
}

/// A failure worth its own exit code.
#[derive(Debug)]
struct Exit(u8, String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}
impl std::error::Error for Exit {}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(Exit(code, message)) = e.downcast_ref::<Exit>() {
                eprintln!("{message}");
                return ExitCode::from(*code);
            }
            match e.downcast_ref::<ServiceError>() {
                Some(ServiceError::Invalid(fields)) => {
                    eprintln!("error: invalid input, nothing was written:");
                    for f in fields {
                        eprintln!("  - {}: {}", f.field, f.problem);
                    }
                }
                Some(ServiceError::Refused { rule, detail }) => {
                    eprintln!("refused ({rule}), nothing was written: {detail}")
                }
                _ => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// A closed pipe (`custodia audit list | head -1`) ends the command quietly, as it ends other
/// Unix tools: `println!` panics when standard output is gone, and this hook turns exactly that
/// panic into a plain exit instead of a panic message and exit code 101.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if message.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(0);
        }
        default(info)
    }));
}

/// An instant for a report: a future one is refused, since a report tells what is on record
/// and the future is not (a projection would look like a fact).
fn report_instant(at: &Option<String>, now: Instant) -> anyhow::Result<Instant> {
    let Some(text) = at else { return Ok(now) };
    let at = parse_rfc3339(text).map_err(|e| anyhow::anyhow!("--at: {e}"))?;
    if at > now {
        anyhow::bail!(
            "--at: {} is in the future; reports describe what is on record up to now",
            domain::time::rfc3339(at)
        );
    }
    Ok(at)
}

/// 24 hex digits (96 bits) from the operating system's generator.
fn generated_password() -> String {
    rand::random::<[u8; 12]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// Take the address to serve on, before any work that would be wasted if it is busy.
fn listen(bind: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener =
        std::net::TcpListener::bind(bind).map_err(|e| anyhow::anyhow!("--bind: cannot listen on {bind}: {e}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serve the API until Ctrl-C or SIGTERM, then finish the requests in flight.
fn serve(service: Service<Database>, listener: std::net::TcpListener) -> anyhow::Result<()> {
    let json = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUSTODIA_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.compact().init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let address = listener.local_addr()?;
        println!("serving the staff web interface at http://{address}/ and the API at http://{address}/api/v1");
        println!("(API description at /api/docs; browsers keep the login cookie only over HTTPS or on localhost); Ctrl-C stops");
        web::serve(listener, web::AppState::new(service), shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Open an existing database. A missing file is refused and nothing is created: only `init`
/// (and `demo`, which builds a new one) create a database.
fn open(db: &str) -> anyhow::Result<Service<Database>> {
    Ok(Service::new(service::open_database(db, false)?))
}

/// A progress bar on a terminal; nothing in logs (indicatif hides itself when stderr is not a terminal).
pub(crate) fn progress_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// Progress of a long command in stages (stage, done, total), shown on `bar`.
fn stages(bar: &ProgressBar) -> impl FnMut(&str, u64, u64) + '_ {
    move |stage, done, total| {
        bar.set_prefix(stage.to_string());
        bar.set_length(total);
        bar.set_position(done);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let given = cli.actor.clone().or_else(|| std::env::var("USER").ok()).filter(|a| !a.trim().is_empty());
    // Every record names who made it: without a name there is no one to name.
    let needs_actor = !matches!(
        cli.command,
        Command::Init
            | Command::Copy { .. }
            | Command::Backup { .. }
            | Command::Restore { .. }
            | Command::Sentence { .. }
            | Command::Bench { .. }
    );
    let actor = match given {
        Some(actor) => actor,
        None if needs_actor => {
            anyhow::bail!("--actor: say who is recording (the USER environment variable is not set)")
        }
        None => String::new(),
    };
    let ctx = Context::now(actor);
    match cli.command {
        Command::Init => {
            Service::new(service::open_database(&cli.db, true)?).init()?;
            println!("initialised {}", service::shown_url(&cli.db));
        }
        Command::Copy { from, to } => {
            let bar = progress_bar("copy");
            let started = std::time::Instant::now();
            let copied = service::copy_database(&from, &to, &mut stages(&bar))?;
            bar.finish_and_clear();
            verified_or_exit("copy", &copied.verification)?;
            println!(
                "copied {} rows from {} to {} in {:.1} s; audit: OK, {} events verified",
                copied.rows,
                service::shown_url(&from),
                service::shown_url(&to),
                started.elapsed().as_secs_f64(),
                copied.verification.events
            );
            println!("head: {}:{}", copied.verification.events, copied.verification.head_hash);
        }
        Command::Backup { to } => {
            let bar = progress_bar("backup");
            let started = std::time::Instant::now();
            let backed_up = service::backup_database(&cli.db, &to, &mut stages(&bar))?;
            bar.finish_and_clear();
            verified_or_exit("backup", &backed_up.verification)?;
            println!(
                "backed up {} into {} and {} in {:.1} s; audit: OK, {} events verified",
                service::shown_url(&cli.db),
                backed_up.files[0].display(),
                backed_up.files[1].display(),
                started.elapsed().as_secs_f64(),
                backed_up.verification.events
            );
            println!("head: {}:{}", backed_up.verification.events, backed_up.verification.head_hash);
        }
        Command::Restore { from } => {
            let bar = progress_bar("restore");
            let started = std::time::Instant::now();
            let restored = service::restore_database(&from, &cli.db, &mut stages(&bar))?;
            bar.finish_and_clear();
            verified_or_exit("restore", &restored.verification)?;
            println!(
                "restored {} rows from {} into {} in {:.1} s; audit: OK, {} events verified",
                restored.rows,
                from.display(),
                service::shown_url(&cli.db),
                started.elapsed().as_secs_f64(),
                restored.verification.events
            );
            println!("head: {}:{}", restored.verification.events, restored.verification.head_hash);
        }
        Command::Demo { scale, seed, no_serve, bind } => {
            let listener = if no_serve { None } else { Some(listen(&bind)?) };
            let service = Service::new(service::open_database(&cli.db, true)?);
            service.init()?;
            let scale = match scale {
                DemoScale::Small => Scale::Small,
                DemoScale::Cecot => Scale::Cecot,
                DemoScale::National => Scale::National,
                DemoScale::Us => Scale::Us,
            };
            let bar = progress_bar("demo");
            let started = std::time::Instant::now();
            let summary = match service::build_demo(&service, scale, seed, &mut stages(&bar)) {
                Err(ServiceError::Refused { rule: "demo.empty_database", detail }) => {
                    bar.finish_and_clear();
                    let message = format!(
                        "refused (demo.empty_database), nothing was written: {detail}\n\
                         to serve this database as it is: custodia serve --db {}",
                        service::shown_url(&cli.db)
                    );
                    return Err(Exit(1, message).into());
                }
                other => other?,
            };
            bar.finish_and_clear();
            let report = service.occupancy(summary.history_to, Detail::Facility)?;
            output::demo_summary(&summary, &report, started.elapsed());
            let first_facility: Vec<String> = report.facilities.first().map(|f| f.code.clone()).into_iter().collect();
            let logins = service.create_demo_logins(&Context::now("demo"), &first_facility)?;
            println!("\nLogins (password shown once; facility roles are assigned to {}):", first_facility.join(", "));
            for login in &logins {
                println!("  {:<9} {:<9} {}", login.role.as_str(), login.name, login.password);
            }
            if let Some(listener) = listener {
                serve(service, listener)?;
            } else {
                println!("\nto serve it: custodia serve --db {}", service::shown_url(&cli.db));
            }
        }
        Command::Serve { bind } => {
            let service = open(&cli.db)?;
            service.upgrade()?;
            serve(service, listen(&bind)?)?;
        }
        Command::User { command: UserCommand::Add { name, role, facilities, password_stdin } } => {
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                (line.trim_end_matches(['\r', '\n']).to_string(), false)
            } else {
                (generated_password(), true)
            };
            let staff = open(&cli.db)?.add_user(&ctx, &name, role, &facilities, &password)?;
            let scope = if staff.role.national() { "all facilities".to_string() } else { staff.facilities.join(", ") };
            println!("created {} ({}, {scope})", staff.name, staff.role.as_str());
            if generated {
                println!("password: {password}");
            }
        }
        Command::User { command: UserCommand::List { format } } => {
            let users = open(&cli.db)?.users()?;
            output::users(&users, format)?;
        }
        Command::User { command: UserCommand::Disable { name } } => {
            let changed = open(&cli.db)?.set_user_disabled(&ctx, &name, true)?;
            let done = if changed {
                "disabled; its sessions ended and its tokens were revoked"
            } else {
                "was already disabled"
            };
            println!("{name} {done}");
        }
        Command::User { command: UserCommand::Enable { name } } => {
            let changed = open(&cli.db)?.set_user_disabled(&ctx, &name, false)?;
            println!("{name} {}", if changed { "enabled" } else { "was not disabled" });
        }
        Command::User { command: UserCommand::ResetPassword { name } } => {
            let service = open(&cli.db)?;
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            service.reset_password(&ctx, &name, line.trim_end_matches(['\r', '\n']))?;
            println!("password of {name} reset; its sessions ended and its tokens were revoked");
        }
        Command::User { command: UserCommand::SetFacilities { name, facilities } } => {
            let account = open(&cli.db)?.set_user_facilities(&ctx, &name, &facilities)?;
            let scope =
                if account.role.national() { "all facilities".to_string() } else { account.facilities.join(", ") };
            println!("{} ({}) now works in {scope}", account.name, account.role.as_str());
        }
        Command::Token { command: TokenCommand::Create { user, days } } => {
            let token = open(&cli.db)?.create_token(&ctx, &user, chrono::Duration::days(days))?;
            println!("token for {user}, valid {days} days; send it as `Authorization: Bearer TOKEN`:");
            println!("{token}");
        }
        Command::Token { command: TokenCommand::Revoke { user } } => {
            let revoked = open(&cli.db)?.revoke_tokens(&ctx, &user)?;
            println!("revoked {revoked} token(s) of {user}");
        }
        Command::Facility { command: FacilityCommand::Add { layout } } => {
            let text = std::fs::read_to_string(&layout)
                .map_err(|e| anyhow::anyhow!("cannot read layout {}: {e}", layout.display()))?;
            let layout = FacilityLayout::parse(&text)?;
            let created = open(&cli.db)?.add_facility(&ctx, &layout)?;
            println!(
                "created facility {}: {} units, {} cells, {} beds (audit event {})",
                created.code, created.units, created.cells, created.beds, created.audit_seq
            );
        }
        Command::Facility { command: FacilityCommand::List } => {
            for f in open(&cli.db)?.facilities()? {
                println!(
                    "{:<8} {:<48} declared {:>7}  {}  on record from {}",
                    f.code,
                    f.name,
                    f.declared_capacity,
                    f.time_zone,
                    domain::time::rfc3339(f.effective_from)
                );
            }
        }
        Command::Cell { command } => {
            let change = match command {
                CellCommand::OutOfOrder { facility, cell, reason } => {
                    CellStatusChange { facility, cell, in_use: false, reason: Some(reason) }
                }
                CellCommand::InUse { facility, cell } => {
                    CellStatusChange { facility, cell, in_use: true, reason: None }
                }
            };
            let seq = open(&cli.db)?.set_cell_status(&ctx, &change)?;
            let state = if change.in_use { "in use" } else { "out of order" };
            println!("cell {}/{} is now {state} (audit event {seq})", change.facility, change.cell);
        }
        Command::Admit { file } => {
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            }
            let request = AdmitRequest::from_json(&text)?;
            let admitted = open(&cli.db)?.admit(&ctx, &request)?;
            println!(
                "admitted {} (booking {}), {} medical examination task(s) opened (audit event {})",
                admitted.person, admitted.booking, admitted.medical_tasks, admitted.audit_seq
            );
        }
        Command::Movement { person, kind, at, note } => {
            let kind = match kind {
                MovementCommand::Place { cell, bed } => MovementKind::Place { cell, bed },
                MovementCommand::Move { cell, bed } => MovementKind::Move { cell, bed },
                MovementCommand::Out { reason } => MovementKind::Out { reason },
                MovementCommand::Return => MovementKind::Return,
                MovementCommand::Transfer { to } => MovementKind::Transfer { to },
                MovementCommand::Receive { facility } => MovementKind::Receive { facility },
                MovementCommand::Release { reason, to_country } => MovementKind::Release { reason, to_country },
            };
            let at = at.as_ref().map(|a| parse_rfc3339(a).map_err(|e| anyhow::anyhow!("--at: {e}"))).transpose()?;
            let request = MovementRequest { person, kind, at, note };
            let recorded = open(&cli.db)?.record_movement(&ctx, &request)?;
            println!(
                "recorded {} of {} at {} (audit event {})",
                recorded.kind,
                recorded.person,
                domain::time::rfc3339(recorded.occurred_at),
                recorded.audit_seq
            );
        }
        Command::Person { number, format } => {
            let record = open(&cli.db)?.person_record(&number, ctx.now)?;
            output::person(&record, format)?;
        }
        Command::Where { person, at } => {
            let at = report_instant(&at, ctx.now)?;
            match open(&cli.db)?.whereabouts(&person, at)? {
                None => println!("{person} was not in custody at {}", domain::time::rfc3339(at)),
                Some(w) => println!("{}", output::whereabouts_line(&person, at, &w)),
            }
        }
        Command::Who { facility, unit, cell, at, format } => {
            let at = report_instant(&at, ctx.now)?;
            let occupants = open(&cli.db)?.occupants(&facility, unit.as_deref(), cell.as_deref(), at)?;
            output::occupants(&occupants, format)?;
        }
        Command::Report { command: ReportCommand::Occupancy { at, format, detail } } => {
            let at = report_instant(&at, ctx.now)?;
            let detail = match detail {
                DetailArg::Facility => Detail::Facility,
                DetailArg::Unit => Detail::Unit,
                DetailArg::Cell => Detail::Cell,
            };
            let report = open(&cli.db)?.occupancy(at, detail)?;
            output::occupancy(&report, format)?;
        }
        Command::Audit { command: AuditCommand::Verify { expect } } => {
            let service = open(&cli.db)?;
            let bar = progress_bar("verify");
            let started = std::time::Instant::now();
            let result = service.verify_audit(&mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            let seconds = started.elapsed().as_secs_f64();
            if let Some(broken) = &result.broken {
                return Err(Exit(3, format!("audit: BROKEN at event {}: {}", broken.seq, broken.reason)).into());
            }
            if !result.projection_problems.is_empty() {
                let mut message = "audit: the chain holds, but records outside it do not follow from it:".to_string();
                for p in &result.projection_problems {
                    message.push_str(&format!("\n  - {p}"));
                }
                return Err(Exit(3, message).into());
            }
            for noted in &expect {
                let (seq, hash) = noted
                    .split_once(':')
                    .and_then(|(seq, hash)| Some((seq.parse::<i64>().ok()?, hash)))
                    .ok_or_else(|| anyhow::anyhow!("--expect: `{noted}` is not SEQ:HASH"))?;
                let found = service.audit_events(seq - 1, 1)?.into_iter().find(|e| e.seq == seq);
                match found {
                    Some(event) if event.hash == hash => {}
                    Some(_) => {
                        return Err(
                            Exit(3, format!("audit: BROKEN at event {seq}: its hash is not the one noted")).into()
                        )
                    }
                    None => {
                        return Err(Exit(3, format!("audit: BROKEN at event {seq}: the event noted is gone")).into())
                    }
                }
            }
            println!(
                "audit: OK, {} events, {} rows and {} reads verified in {seconds:.2} s ({:.0} events/s)",
                result.events,
                result.rows,
                result.reads,
                result.events as f64 / seconds.max(1e-9)
            );
            println!("head: {}:{}", result.events, result.head_hash);
        }
        Command::Audit { command: AuditCommand::Head } => match open(&cli.db)?.audit_head()? {
            Some((seq, hash)) => println!("{seq}:{hash}"),
            None => return Err(Exit(3, "audit: no events yet".into()).into()),
        },
        Command::Audit { command: AuditCommand::List { after, limit } } => {
            for event in open(&cli.db)?.audit_events(after, limit)? {
                println!("{}", serde_json::to_string(&event)?);
            }
        }
        Command::Housing { command } => housing::run_housing(&cli.db, &ctx, command)?,
        Command::Classify(args) => housing::run_classify(&cli.db, &ctx, args)?,
        Command::Group { command } => housing::run_group(&cli.db, &ctx, command)?,
        Command::KeepApart { command } => housing::run_keep_apart(&cli.db, &ctx, command)?,
        Command::Allocate(args) => housing::run_allocate(&cli.db, &ctx, args)?,
        Command::Count { command } => housing::run_count(&cli.db, &ctx, command)?,
        Command::Ruleset { command } => legal::run_rule_set(&cli.db, &ctx, command)?,
        Command::Charge(args) => legal::run_charge(&cli.db, &ctx, args)?,
        Command::Court(args) => legal::run_court(&cli.db, &ctx, args)?,
        Command::Hold { command } => legal::run_hold(&cli.db, &ctx, command)?,
        Command::Legal { person } => legal::run_legal(&cli.db, &ctx, &person)?,
        Command::Alerts(args) => legal::run_alerts(&cli.db, &ctx, args)?,
        Command::Family { command } => legal::run_family(&cli.db, &ctx, command)?,
        Command::Visit(args) => legal::run_visit(&cli.db, &ctx, args)?,
        Command::Incident { command } => incident::run_incident(&cli.db, &ctx, command)?,
        Command::Obligation { command } => incident::run_obligation(&cli.db, &ctx, command)?,
        Command::Notification { command } => incident::run_notification(&cli.db, &ctx, command)?,
        Command::Statistics { command } => incident::run_statistics(&cli.db, &ctx, command)?,
        Command::Sentence { command } => sentence::run_sentence(command)?,
        Command::Identity { command } => identity::run_identity(&cli.db, &ctx, command)?,
        Command::Bench { command } => bench::run(command)?,
    }
    Ok(())
}
