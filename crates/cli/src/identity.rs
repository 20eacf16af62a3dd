//! `custodia identity`: candidates for an intake identity, explicit merges and un-merges of
//! people's records, and a person's lineage of merges.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use domain::text::LongText;

use domain::time::rfc3339;
use service::identity::{intake_from_json, Candidate, Lineage, MergeRequest, UnmergeRequest};
use service::Context;

use crate::output::{csv_cell, Format};

/// Identity resolution.
#[derive(Subcommand)]
pub enum IdentityCommand {
    /// People on record who may be the person of an intake, best first, with score and reasons;
    /// nothing is written. FILE holds an `identity` object or a whole admission (`-` reads standard input).
    Candidates {
        /// JSON file with the intake identity.
        file: PathBuf,
        /// At most this many, 1 to 50.
        #[arg(long, default_value_t = 10)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Merge a duplicate record into the record that survives, with the reason.
    Merge {
        /// Number of the duplicate record.
        duplicate: String,
        /// Number of the record that survives.
        #[arg(long)]
        into: String,
        /// Why they are the same person.
        #[arg(long)]
        reason: LongText,
    },
    /// Undo the merge of a record, with the reason.
    Unmerge {
        /// Number of the record merged away.
        duplicate: String,
        /// Why the merge was wrong.
        #[arg(long)]
        reason: LongText,
    },
    /// A person's merges: whom they are merged into, who is merged into them, every merge and un-merge.
    Lineage {
        /// Person number.
        number: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

fn read(file: &PathBuf) -> anyhow::Result<String> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    }
    Ok(text)
}

/// Run one `custodia identity` command.
pub fn run_identity(db: &str, ctx: &Context, command: IdentityCommand) -> anyhow::Result<()> {
    match command {
        IdentityCommand::Candidates { file, limit, format } => {
            let identity = intake_from_json(&read(&file)?)?;
            let found = crate::open(db)?.identity_candidates(&identity, Some(limit), |_| true)?;
            candidates(&found, format)?;
        }
        IdentityCommand::Merge { duplicate, into, reason } => {
            let merged = crate::open(db)?.merge_person(ctx, &duplicate, &MergeRequest { into, reason })?;
            println!("merged {} into {} (audit event {})", merged.duplicate, merged.into, merged.audit_seq);
        }
        IdentityCommand::Unmerge { duplicate, reason } => {
            let unmerged = crate::open(db)?.unmerge_person(ctx, &duplicate, &UnmergeRequest { reason })?;
            println!(
                "un-merged {} from {} (audit event {})",
                unmerged.duplicate, unmerged.was_merged_into, unmerged.audit_seq
            );
        }
        IdentityCommand::Lineage { number, format } => {
            let lineage = crate::open(db)?.person_lineage(&number)?;
            if matches!(format, Format::Table) {
                print_lineage(&lineage);
            } else {
                println!("{}", serde_json::to_string(&lineage)?);
            }
        }
    }
    Ok(())
}

fn candidates(found: &[Candidate], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(found)?),
        Format::Csv => {
            println!("score,number,name,date_of_birth,facilities,in_custody,reasons");
            for c in found {
                println!(
                    "{:.3},{},{},{},{},{},{}",
                    c.score,
                    csv_cell(&c.number),
                    csv_cell(&c.name),
                    c.date_of_birth,
                    csv_cell(&c.facilities.join(" ")),
                    c.in_custody,
                    csv_cell(&c.reasons.join("; "))
                );
            }
        }
        Format::Table => {
            if found.is_empty() {
                println!("no one on record resembles this identity");
            }
            for c in found {
                let custody = if c.in_custody { "in custody" } else { "not in custody" };
                println!(
                    "{:.3}  {}  {}  born {}  {custody}{}",
                    c.score,
                    c.number,
                    c.name,
                    c.date_of_birth,
                    if c.facilities.is_empty() { String::new() } else { format!(" ({})", c.facilities.join(", ")) }
                );
                for reason in &c.reasons {
                    println!("       - {reason}");
                }
            }
        }
    }
    Ok(())
}

fn print_lineage(lineage: &Lineage) {
    match &lineage.merged_into {
        Some(survivor) => println!("{} is merged into {survivor}", lineage.number),
        None => println!("{} is not merged into anyone", lineage.number),
    }
    if !lineage.merged_from.is_empty() {
        println!("merged into {}: {}", lineage.number, lineage.merged_from.join(", "));
    }
    for m in &lineage.history {
        println!(
            "{}  merge {} of {} into {} by {}: {}",
            rfc3339(m.recorded_at),
            m.id,
            m.duplicate,
            m.survivor,
            m.actor,
            m.reason
        );
        if let Some(u) = &m.unmerged {
            println!("{}  un-merged by {}: {}", rfc3339(u.recorded_at), u.actor, u.reason);
        }
    }
}
