//! Legal safeguards: jurisdiction rule sets (pretrial limits, extensions, age of majority) as
//! data with effective dates, pretrial deadlines, legal holds, and the alerts raised when a
//! deadline nears or passes.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::FieldError;

/// How serious the most serious charge is, as rule sets distinguish offences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Seriousness {
    /// A less serious offence (delito menos grave).
    LessSerious,
    /// A serious offence (delito grave).
    Serious,
}

impl Seriousness {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Seriousness::LessSerious => "less_serious",
            Seriousness::Serious => "serious",
        }
    }

    /// Parse the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        [Seriousness::LessSerious, Seriousness::Serious].into_iter().find(|s| s.as_str() == text)
    }
}

/// How a court may extend pretrial detention under a rule set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ExtensionRule {
    /// No extension is possible.
    None,
    /// A court ruling may extend it by at most this many months in all.
    CourtRuling {
        /// Most months all extensions together may add.
        max_months: u32,
    },
    /// A reasoned ruling may extend it up to half the maximum penalty of the offence.
    HalfMaximumPenalty,
}

/// The rules of one period of a jurisdiction, from the day they take effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RulePeriod {
    /// First day the rules apply.
    pub effective_from: NaiveDate,
    /// Where the rules come from (article, law, amendment).
    pub source: String,
    /// Age from which people count as adults.
    pub age_of_majority: u32,
    /// Longest pretrial detention for a less serious offence, in months.
    pub pretrial_months_less_serious: u32,
    /// Longest pretrial detention for a serious offence, in months.
    pub pretrial_months_serious: u32,
    /// How courts may extend it.
    pub extension: ExtensionRule,
    /// Hours after which a transfer not yet received raises an alert.
    pub transfer_alert_hours: u32,
}

/// A jurisdiction's rule set: its periods, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleSet {
    /// Code a facility names, for example `sv`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Periods, oldest first.
    pub periods: Vec<RulePeriod>,
}

impl RuleSet {
    /// Check the periods agree: at least one, in order, sensible numbers. Fields are named
    /// `periods[i].field`.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.code.trim().is_empty() {
            errors.push(FieldError::new("code", "is required"));
        }
        if self.periods.is_empty() {
            errors.push(FieldError::new("periods", "a rule set needs at least one period"));
        }
        for (i, p) in self.periods.iter().enumerate() {
            let field = |name: &str| format!("periods[{i}].{name}");
            if i > 0 && p.effective_from <= self.periods[i - 1].effective_from {
                errors.push(FieldError::new(field("effective_from"), "must be later than the previous period's"));
            }
            if !(14..=25).contains(&p.age_of_majority) {
                errors.push(FieldError::new(field("age_of_majority"), "must be between 14 and 25"));
            }
            if p.pretrial_months_less_serious == 0 || p.pretrial_months_serious == 0 {
                errors.push(FieldError::new(field("pretrial_months"), "a pretrial limit of 0 months is not a limit"));
            }
            if p.pretrial_months_less_serious > p.pretrial_months_serious {
                errors.push(FieldError::new(
                    field("pretrial_months_less_serious"),
                    "is longer than the limit for serious offences",
                ));
            }
            if p.transfer_alert_hours == 0 {
                errors.push(FieldError::new(field("transfer_alert_hours"), "must be at least 1"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The period in force on a day; the first one before any period began.
    pub fn period_on(&self, day: NaiveDate) -> &RulePeriod {
        self.periods.iter().rev().find(|p| p.effective_from <= day).unwrap_or(&self.periods[0])
    }
}

/// A court's extension of pretrial detention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// Day of the ruling.
    pub granted_on: NaiveDate,
    /// Months it adds.
    pub months: u32,
}

/// The pretrial deadline of one person, with how it was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PretrialDeadline {
    /// Last day detention without judgment is lawful.
    pub deadline: NaiveDate,
    /// How it was reached, in words.
    pub explanation: Vec<String>,
}

/// Days before a deadline when the warning starts.
pub const WARNING_DAYS: i64 = 30;

fn add_months(day: NaiveDate, months: u32) -> NaiveDate {
    day.checked_add_months(Months::new(months)).unwrap_or(NaiveDate::MAX)
}

/// The last lawful day of pretrial detention, as [`pretrial_deadline`] explains it, computed
/// without the explanation (alerts compute it for everyone held).
pub fn pretrial_deadline_day(
    rules: &RuleSet,
    detained_on: NaiveDate,
    seriousness: Option<Seriousness>,
    max_penalty_years: Option<f64>,
    extensions: &[Extension],
) -> NaiveDate {
    if extensions.is_empty() {
        let period = rules.period_on(detained_on);
        let months = match seriousness {
            Some(Seriousness::Serious) => period.pretrial_months_serious,
            _ => period.pretrial_months_less_serious,
        };
        return add_months(detained_on, months).pred_opt().unwrap_or(detained_on);
    }
    pretrial_deadline(rules, detained_on, seriousness, max_penalty_years, extensions).deadline
}

/// The pretrial deadline: the detention's first day plus the limit for the charge's seriousness
/// under the rules in force that day, minus one day, plus the extensions granted (each within
/// what the rules in force on the day of the ruling allow). `max_penalty_years` is the highest
/// penalty of the charges, when known.
pub fn pretrial_deadline(
    rules: &RuleSet,
    detained_on: NaiveDate,
    seriousness: Option<Seriousness>,
    max_penalty_years: Option<f64>,
    extensions: &[Extension],
) -> PretrialDeadline {
    let period = rules.period_on(detained_on);
    let mut explanation = Vec::new();
    let (months, what) = match seriousness {
        Some(Seriousness::Serious) => (period.pretrial_months_serious, "a serious offence"),
        Some(Seriousness::LessSerious) => (period.pretrial_months_less_serious, "a less serious offence"),
        None => (
            period.pretrial_months_less_serious,
            "no charge recorded yet, so the shorter limit for a less serious offence",
        ),
    };
    let mut deadline = add_months(detained_on, months).pred_opt().unwrap_or(detained_on);
    explanation.push(format!(
        "Detained since {detained_on}; for {what} {} ({}) allows {months} months: until {deadline}.",
        rules.name, period.source
    ));
    let mut granted = 0u32;
    let mut sorted = extensions.to_vec();
    sorted.sort_by_key(|e| e.granted_on);
    for e in sorted {
        let rule = rules.period_on(e.granted_on).extension;
        let allowed = match rule {
            ExtensionRule::None => 0,
            ExtensionRule::CourtRuling { max_months } => max_months.saturating_sub(granted),
            ExtensionRule::HalfMaximumPenalty => match max_penalty_years {
                Some(years) => ((years * 12.0 / 2.0).floor() as u32).saturating_sub(months + granted),
                None => 0,
            },
        };
        let months_added = e.months.min(allowed);
        granted += months_added;
        // Counted from the first day, so that month ends fall as they would for a longer limit.
        deadline = add_months(detained_on, months + granted).pred_opt().unwrap_or(detained_on);
        let limit = if months_added < e.months {
            format!(" (of {} asked; the rules in force then allow {allowed} more)", e.months)
        } else {
            String::new()
        };
        explanation.push(format!("Extended on {} by {months_added} months{limit}: until {deadline}.", e.granted_on));
    }
    PretrialDeadline { deadline, explanation }
}

/// The kinds of legal hold a court or authority may place on a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HoldKind {
    /// Do not transfer to another facility.
    DoNotTransfer,
    /// Do not remove to a country (withholding of removal).
    DoNotRemove,
    /// Do not release.
    DoNotRelease,
    /// Produce at court on a date: no transfer or removal until then.
    ProduceAtCourt,
}

impl HoldKind {
    /// Every kind.
    pub const ALL: [HoldKind; 4] =
        [HoldKind::DoNotTransfer, HoldKind::DoNotRemove, HoldKind::DoNotRelease, HoldKind::ProduceAtCourt];

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::DoNotTransfer => "do_not_transfer",
            HoldKind::DoNotRemove => "do_not_remove",
            HoldKind::DoNotRelease => "do_not_release",
            HoldKind::ProduceAtCourt => "produce_at_court",
        }
    }

    /// Parse the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// What a movement does that a hold may forbid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restricted<'a> {
    /// Sent to another facility in the country.
    Transfer,
    /// Released.
    Release,
    /// Handed to a foreign authority: removed to this country.
    Removal {
        /// ISO country code of the destination.
        country: &'a str,
    },
}

/// A hold in force, as the movement check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Kind.
    pub kind: HoldKind,
    /// The country removal to which is forbidden (do_not_remove).
    pub country: Option<String>,
    /// The day the person must be produced at court (produce_at_court).
    pub on_date: Option<NaiveDate>,
}

impl Hold {
    /// Whether the hold forbids this movement on this day.
    pub fn forbids(&self, movement: &Restricted<'_>, day: NaiveDate) -> bool {
        match (self.kind, movement) {
            (HoldKind::DoNotTransfer, Restricted::Transfer) => true,
            (HoldKind::DoNotRelease, Restricted::Release | Restricted::Removal { .. }) => true,
            (HoldKind::DoNotRemove, Restricted::Removal { country }) => {
                self.country.as_deref().is_none_or(|c| c.eq_ignore_ascii_case(country))
            }
            (HoldKind::ProduceAtCourt, Restricted::Transfer | Restricted::Removal { .. }) => {
                self.on_date.is_none_or(|d| day <= d)
            }
            _ => false,
        }
    }
}

/// The kinds of alert Custodia raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertKind {
    /// An untried person's pretrial deadline is within the warning days.
    PretrialDueSoon,
    /// An untried person is held past their pretrial deadline.
    PretrialOverdue,
    /// A person is held past their release date.
    ReleaseOverdue,
    /// A transfer was not received within the rule set's hours.
    TransferUnreceived,
    /// A notification obligation is past its due time.
    ObligationOverdue,
}

impl AlertKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::PretrialDueSoon => "pretrial_due_soon",
            AlertKind::PretrialOverdue => "pretrial_overdue",
            AlertKind::ReleaseOverdue => "release_overdue",
            AlertKind::TransferUnreceived => "transfer_unreceived",
            AlertKind::ObligationOverdue => "obligation_overdue",
        }
    }
}

/// The alert a pretrial deadline raises on a day, if any.
pub fn pretrial_alert(deadline: NaiveDate, today: NaiveDate) -> Option<AlertKind> {
    if today > deadline {
        Some(AlertKind::PretrialOverdue)
    } else if (deadline - today).num_days() <= WARNING_DAYS {
        Some(AlertKind::PretrialDueSoon)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn sv() -> RuleSet {
        RuleSet {
            code: "sv".into(),
            name: "El Salvador".into(),
            periods: vec![
                RulePeriod {
                    effective_from: day("1998-04-20"),
                    source: "CPP art. 8".into(),
                    age_of_majority: 18,
                    pretrial_months_less_serious: 12,
                    pretrial_months_serious: 24,
                    extension: ExtensionRule::CourtRuling { max_months: 12 },
                    transfer_alert_hours: 24,
                },
                RulePeriod {
                    effective_from: day("2025-02-20"),
                    source: "CPP art. 8 as amended in February 2025".into(),
                    age_of_majority: 18,
                    pretrial_months_less_serious: 12,
                    pretrial_months_serious: 24,
                    extension: ExtensionRule::HalfMaximumPenalty,
                    transfer_alert_hours: 24,
                },
            ],
        }
    }

    #[test]
    fn the_deadline_is_the_limit_for_the_seriousness_from_the_first_day() {
        let d = pretrial_deadline(&sv(), day("2024-03-15"), Some(Seriousness::Serious), None, &[]);
        assert_eq!(d.deadline, day("2026-03-14"));
        assert_eq!(pretrial_deadline_day(&sv(), day("2024-03-15"), Some(Seriousness::Serious), None, &[]), d.deadline);
        let d = pretrial_deadline(&sv(), day("2024-03-15"), None, None, &[]);
        assert_eq!(d.deadline, day("2025-03-14"));
        assert!(d.explanation[0].contains("no charge recorded"), "{:?}", d.explanation);
    }

    #[test]
    fn extensions_are_capped_by_the_rules_in_force_on_the_day_of_the_ruling() {
        let before = [Extension { granted_on: day("2024-12-01"), months: 18 }];
        let d = pretrial_deadline(&sv(), day("2024-01-10"), Some(Seriousness::LessSerious), None, &before);
        assert_eq!(d.deadline, day("2026-01-09"), "12 months at most before the amendment");
        // After the amendment: up to half the maximum penalty (20 years -> 120 months in all).
        let after = [Extension { granted_on: day("2025-06-01"), months: 36 }];
        let d = pretrial_deadline(&sv(), day("2024-01-10"), Some(Seriousness::Serious), Some(20.0), &after);
        assert_eq!(d.deadline, day("2029-01-09"));
    }

    #[test]
    fn an_extension_counts_from_the_first_day_across_month_ends() {
        let one = [Extension { granted_on: day("2024-06-01"), months: 1 }];
        let d = pretrial_deadline(&sv(), day("2024-01-31"), Some(Seriousness::LessSerious), None, &one);
        assert_eq!(d.deadline, day("2025-02-27"), "13 months from 31 January end on 28 February, minus one day");
        let d = pretrial_deadline(&sv(), day("2024-03-01"), Some(Seriousness::LessSerious), None, &one);
        assert_eq!(d.deadline, day("2025-03-31"));
    }

    #[test]
    fn holds_forbid_the_movements_they_name() {
        let removal = Hold { kind: HoldKind::DoNotRemove, country: Some("SV".into()), on_date: None };
        assert!(removal.forbids(&Restricted::Removal { country: "sv" }, day("2026-01-01")));
        assert!(!removal.forbids(&Restricted::Removal { country: "GT" }, day("2026-01-01")));
        assert!(!removal.forbids(&Restricted::Transfer, day("2026-01-01")));
        let court = Hold { kind: HoldKind::ProduceAtCourt, country: None, on_date: Some(day("2026-02-01")) };
        assert!(court.forbids(&Restricted::Transfer, day("2026-02-01")));
        assert!(!court.forbids(&Restricted::Transfer, day("2026-02-02")));
    }

    #[test]
    fn alerts_warn_thirty_days_ahead_and_after() {
        assert_eq!(pretrial_alert(day("2026-03-01"), day("2026-01-01")), None);
        assert_eq!(pretrial_alert(day("2026-03-01"), day("2026-02-01")), Some(AlertKind::PretrialDueSoon));
        assert_eq!(pretrial_alert(day("2026-03-01"), day("2026-03-02")), Some(AlertKind::PretrialOverdue));
    }

    #[test]
    fn a_rule_set_with_periods_out_of_order_is_refused_naming_the_period() {
        let mut rules = sv();
        rules.periods.swap(0, 1);
        let errors = rules.validate().unwrap_err();
        assert_eq!(errors[0].field, "periods[1].effective_from");
    }
}
