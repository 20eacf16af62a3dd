//! `custodia sentence calc FILE.json`: release-date calculation, without a database.

use std::io::Read;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use service::ServiceError;

/// Sentences.
#[derive(Subcommand)]
pub enum SentenceCommand {
    /// Calculate each sentence's expiry and the release date from a JSON file (`-` reads standard
    /// input); see docs/sentence-example.json. Nothing is stored.
    Calc {
        /// JSON file with `sentences` (id, start or consecutive_to, years, months, days) and `remand`
        /// (from, to, counts_toward).
        file: PathBuf,
        /// Output format: the JSON answer, or a table of expiries followed by the trace.
        #[arg(long, value_enum, default_value = "json")]
        format: CalcFormat,
    },
}

/// How a calculation is printed.
#[derive(Clone, Copy, ValueEnum)]
pub enum CalcFormat {
    /// `{"release_date", "expiry", "trace"}`, as the API answers.
    Json,
    /// A table of the sentences, the release date and the trace.
    Table,
}

/// Run a `sentence` command.
pub fn run_sentence(command: SentenceCommand) -> anyhow::Result<()> {
    match command {
        SentenceCommand::Calc { file, format } => {
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            }
            let input = service::sentence::parse_input(&text).map_err(refusal)?;
            let calculation = service::sentence::calculate(&input).map_err(refusal)?;
            match format {
                CalcFormat::Json => println!("{}", serde_json::to_string(&calculation)?),
                CalcFormat::Table => {
                    let width = calculation.outcomes().map(|o| o.id.chars().count()).max().unwrap_or(0).max(8);
                    println!(
                        "{:<width$}  {:<10}  {:<10}  {:>6}  {:<10}  follows",
                        "sentence", "start", "full term", "remand", "expiry"
                    );
                    for o in calculation.outcomes() {
                        println!(
                            "{:<width$}  {}  {}  {:>6}  {}  {}",
                            o.id,
                            o.start,
                            o.full_term_end,
                            o.credited_days,
                            o.expiry,
                            o.consecutive_to.unwrap_or("–")
                        );
                    }
                    println!("\nrelease date: {}\n", calculation.release_date());
                    for line in calculation.trace() {
                        println!("  {line}");
                    }
                }
            }
        }
    }
    Ok(())
}

/// A refusal in words, exit code 1 (a calculation writes nothing, so "nothing was written" would mislead).
fn refusal(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Invalid(fields) => {
            let mut message = "error: the sentences cannot be calculated:".to_string();
            for f in fields {
                message.push_str(&format!("\n  - {}: {}", f.field, f.problem));
            }
            crate::Exit(1, message).into()
        }
        other => other.into(),
    }
}
