//! Incidents, the people involved, injuries, and the obligations a death, a disappearance or a
//! serious injury opens: notify the next of kin (Mandela Rule 69) and the independent authority
//! (Rule 71) within a deadline. Also the calendar months incident statistics are counted in.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::time::Instant;

/// Hours from the recording of a death, disappearance or serious injury within which the next of
/// kin must be told (Rule 69: "immediately"; a day is the longest delay the software tolerates).
pub const NEXT_OF_KIN_DEADLINE_HOURS: i64 = 24;
/// Hours within which the independent authority must be told (Rule 71: "without delay").
pub const AUTHORITY_DEADLINE_HOURS: i64 = 24;

/// Implements `as_str`, `parse` and `ALL` for a fieldless enum from its variants and stored forms.
macro_rules! codes {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every value, in a stable order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// Stored form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parse the stored form.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IncidentKind {
    /// One or more people attacked another.
    Assault,
    /// A fight between people held.
    Fight,
    /// Someone was killed by another person.
    Homicide,
    /// A death (natural, undetermined, suicide…).
    Death,
    /// Self-harm.
    SelfHarm,
    /// Someone got away from custody.
    Escape,
    /// An attempt to escape that failed.
    EscapeAttempt,
    /// A collective disturbance or riot.
    Disturbance,
    /// Forbidden items found.
    Contraband,
    /// Staff used force.
    UseOfForce,
    /// A medical emergency.
    MedicalEmergency,
}

codes!(IncidentKind {
    Assault => "assault",
    Fight => "fight",
    Homicide => "homicide",
    Death => "death",
    SelfHarm => "self_harm",
    Escape => "escape",
    EscapeAttempt => "escape_attempt",
    Disturbance => "disturbance",
    Contraband => "contraband",
    UseOfForce => "use_of_force",
    MedicalEmergency => "medical_emergency",
});

/// How a person was involved in an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InvolvementRole {
    /// Harmed by the incident.
    Victim,
    /// Caused it.
    Perpetrator,
    /// Saw it.
    Witness,
    /// Died.
    Deceased,
    /// Missing: escaped or not found.
    Missing,
    /// Involved otherwise.
    Involved,
}

codes!(InvolvementRole {
    Victim => "victim",
    Perpetrator => "perpetrator",
    Witness => "witness",
    Deceased => "deceased",
    Missing => "missing",
    Involved => "involved",
});

/// How bad an injury is, as documented by health care staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InjurySeverity {
    /// Needs no more than first aid.
    Minor,
    /// Needs treatment beyond first aid, or endangers health: opens obligations.
    Serious,
    /// The person died of it: a death.
    Fatal,
}

codes!(InjurySeverity {
    Minor => "minor",
    Serious => "serious",
    Fatal => "fatal",
});

/// The kind of event that opens obligations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum NotifiableEvent {
    /// A death in custody.
    Death,
    /// An escape or a person missing.
    Disappearance,
    /// An injury documented as serious.
    SeriousInjury,
}

codes!(NotifiableEvent {
    Death => "death",
    Disappearance => "disappearance",
    SeriousInjury => "serious_injury",
});

/// Who must be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ObligationKind {
    /// The person's family or next of kin (Mandela Rule 69).
    NextOfKin,
    /// The independent authority that investigates (Mandela Rule 71).
    IndependentAuthority,
}

codes!(ObligationKind {
    NextOfKin => "next_of_kin",
    IndependentAuthority => "independent_authority",
});

impl ObligationKind {
    /// The Mandela Rule that asks for it.
    pub fn rule(self) -> &'static str {
        match self {
            ObligationKind::NextOfKin => "Mandela Rule 69",
            ObligationKind::IndependentAuthority => "Mandela Rule 71",
        }
    }

    /// How long after the event is recorded it falls due.
    pub fn deadline(self) -> Duration {
        match self {
            ObligationKind::NextOfKin => Duration::hours(NEXT_OF_KIN_DEADLINE_HOURS),
            ObligationKind::IndependentAuthority => Duration::hours(AUTHORITY_DEADLINE_HOURS),
        }
    }
}

/// How someone was notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum NotificationMethod {
    /// By telephone.
    Phone,
    /// Face to face.
    InPerson,
    /// By letter.
    Letter,
    /// By email.
    Email,
    /// Otherwise, explained in the note.
    Other,
}

codes!(NotificationMethod {
    Phone => "phone",
    InPerson => "in_person",
    Letter => "letter",
    Email => "email",
    Other => "other",
});

/// Whether a person with this role in an incident of this kind died in it, given the worst
/// injury documented for them. The deceased died; so did the victim of a homicide or of a death;
/// and anyone whose injury is documented as fatal.
pub fn died(kind: IncidentKind, role: InvolvementRole, worst_injury: Option<InjurySeverity>) -> bool {
    role == InvolvementRole::Deceased
        || (role == InvolvementRole::Victim && matches!(kind, IncidentKind::Homicide | IncidentKind::Death))
        || worst_injury == Some(InjurySeverity::Fatal)
}

/// One person of an incident as the obligation rule sees them, identified by `P` (a stored id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concerned<P> {
    /// Who.
    pub person: P,
    /// Their role in the incident.
    pub role: InvolvementRole,
    /// The worst injury documented for them in it, if any.
    pub worst_injury: Option<InjurySeverity>,
    /// Whether they declined that their family be notified (latest preference on record).
    pub declines_family_notification: bool,
}

/// An obligation an incident opens: who must be told, of what, and about whom (next of kin only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Due<P> {
    /// Who must be told.
    pub kind: ObligationKind,
    /// Of what.
    pub event: NotifiableEvent,
    /// About whom: the person whose next of kin is told; `None` for the authority, told once
    /// per incident and event.
    pub person: Option<P>,
}

/// The obligations an incident opens now that were not opened before (`already`), in a stable
/// order: for each event, the authority first, then each person's next of kin.
///
/// - A death: kind death or homicide, a person who died (see [`died`]).
/// - A disappearance: kind escape, or a person with role missing.
/// - A serious injury: an injury documented as serious (of a person who did not die).
///
/// Each event opens one authority notification per incident (Rule 71) and, for each person it
/// concerns, a next-of-kin notification (Rule 69), unless the person declined that their family
/// be notified and the event is not a death: Rule 69 respects a refusal for illness or injury,
/// never for a death.
pub fn obligations_for<P: Copy + Eq>(kind: IncidentKind, people: &[Concerned<P>], already: &[Due<P>]) -> Vec<Due<P>> {
    let mut due = Vec::new();
    let dead = |c: &&Concerned<P>| died(kind, c.role, c.worst_injury);
    let events: [(NotifiableEvent, bool, Vec<&Concerned<P>>); 3] = [
        (
            NotifiableEvent::Death,
            matches!(kind, IncidentKind::Death | IncidentKind::Homicide),
            people.iter().filter(dead).collect(),
        ),
        (
            NotifiableEvent::Disappearance,
            kind == IncidentKind::Escape,
            people.iter().filter(|c| c.role == InvolvementRole::Missing && !dead(c)).collect(),
        ),
        (
            NotifiableEvent::SeriousInjury,
            false,
            people.iter().filter(|c| c.worst_injury == Some(InjurySeverity::Serious) && !dead(c)).collect(),
        ),
    ];
    for (event, by_kind, concerned) in events {
        if !by_kind && concerned.is_empty() {
            continue;
        }
        due.push(Due { kind: ObligationKind::IndependentAuthority, event, person: None });
        for c in concerned {
            if c.declines_family_notification && event != NotifiableEvent::Death {
                continue;
            }
            let next_of_kin = Due { kind: ObligationKind::NextOfKin, event, person: Some(c.person) };
            if !due.contains(&next_of_kin) {
                due.push(next_of_kin);
            }
        }
    }
    due.retain(|d| !already.contains(d));
    due
}

/// A calendar month, the unit incident statistics are counted in (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// Parse `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let wrong = || format!("`{text}` is not a month written YYYY-MM, such as 2026-01");
        let (year, month) = text.trim().split_once('-').ok_or_else(wrong)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(wrong());
        }
        let (year, month): (i32, u32) = (year.parse().map_err(|_| wrong())?, month.parse().map_err(|_| wrong())?);
        if !(1..=12).contains(&month) {
            return Err(wrong());
        }
        Ok(Self { year, month })
    }

    /// The month an instant falls in (UTC).
    pub fn of(at: Instant) -> Self {
        Self { year: at.year(), month: at.month() }
    }

    /// The month after this one.
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self { year: self.year + 1, month: 1 }
        } else {
            Self { year: self.year, month: self.month + 1 }
        }
    }

    /// The month `n` months before this one.
    pub fn minus(self, n: u32) -> Self {
        let index = self.year as i64 * 12 + i64::from(self.month) - 1 - i64::from(n);
        Self { year: index.div_euclid(12) as i32, month: index.rem_euclid(12) as u32 + 1 }
    }

    /// Months from this one to `last`, both included; 0 when `last` is earlier.
    pub fn count_to(self, last: Month) -> u32 {
        let span = (last.year as i64 * 12 + i64::from(last.month)) - (self.year as i64 * 12 + i64::from(self.month));
        u32::try_from(span + 1).unwrap_or(0)
    }

    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// 00:00 UTC of its first day: the start of the month.
    pub fn start(self) -> Instant {
        Utc.from_utc_datetime(&self.first_day().and_time(chrono::NaiveTime::MIN))
    }

    /// 00:00 UTC of each of its days, in order.
    pub fn midnights(self) -> impl Iterator<Item = Instant> {
        let end = self.next().start();
        (0..).map(move |d| self.start() + Duration::days(d)).take_while(move |at| *at < end)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvolvementRole::*;

    fn person(id: i64, role: InvolvementRole) -> Concerned<i64> {
        Concerned { person: id, role, worst_injury: None, declines_family_notification: false }
    }

    fn authority(event: NotifiableEvent) -> Due<i64> {
        Due { kind: ObligationKind::IndependentAuthority, event, person: None }
    }

    fn kin(event: NotifiableEvent, id: i64) -> Due<i64> {
        Due { kind: ObligationKind::NextOfKin, event, person: Some(id) }
    }

    #[test]
    fn codes_round_trip_and_match_serde() {
        for kind in IncidentKind::ALL {
            assert_eq!(IncidentKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for role in InvolvementRole::ALL {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        for method in NotificationMethod::ALL {
            assert_eq!(serde_json::to_value(method).unwrap(), method.as_str());
        }
        assert_eq!(IncidentKind::ALL.len(), 11);
        assert_eq!(IncidentKind::parse("riot"), None);
    }

    #[test]
    fn a_death_opens_the_authority_and_the_next_of_kin_even_when_the_person_declined() {
        let mut deceased = person(1, Deceased);
        deceased.declines_family_notification = true;
        let due = obligations_for(IncidentKind::Death, &[deceased, person(2, Witness)], &[]);
        assert_eq!(due, [authority(NotifiableEvent::Death), kin(NotifiableEvent::Death, 1)]);
    }

    #[test]
    fn the_victim_of_a_homicide_died_and_the_perpetrator_did_not() {
        let due = obligations_for(IncidentKind::Homicide, &[person(1, Victim), person(2, Perpetrator)], &[]);
        assert_eq!(due, [authority(NotifiableEvent::Death), kin(NotifiableEvent::Death, 1)]);
        // In an assault, the victim is alive.
        assert!(obligations_for(IncidentKind::Assault, &[person(1, Victim)], &[]).is_empty());
    }

    #[test]
    fn a_death_with_nobody_named_still_tells_the_authority() {
        assert_eq!(obligations_for::<i64>(IncidentKind::Death, &[], &[]), [authority(NotifiableEvent::Death)]);
    }

    #[test]
    fn an_escape_tells_the_authority_once_and_each_missing_persons_family_unless_they_declined() {
        let mut declined = person(3, Missing);
        declined.declines_family_notification = true;
        let due = obligations_for(IncidentKind::Escape, &[person(1, Missing), person(2, Missing), declined], &[]);
        assert_eq!(
            due,
            [
                authority(NotifiableEvent::Disappearance),
                kin(NotifiableEvent::Disappearance, 1),
                kin(NotifiableEvent::Disappearance, 2)
            ]
        );
        // A person missing after a disturbance is a disappearance too.
        let due = obligations_for(IncidentKind::Disturbance, &[person(4, Missing)], &[]);
        assert_eq!(due, [authority(NotifiableEvent::Disappearance), kin(NotifiableEvent::Disappearance, 4)]);
        // An attempt that failed is no disappearance.
        assert!(obligations_for(IncidentKind::EscapeAttempt, &[person(1, Perpetrator)], &[]).is_empty());
    }

    #[test]
    fn a_serious_injury_opens_obligations_a_minor_one_does_not_and_a_refusal_is_respected() {
        let mut injured = person(1, Victim);
        injured.worst_injury = Some(InjurySeverity::Minor);
        assert!(obligations_for(IncidentKind::Assault, &[injured], &[]).is_empty());
        injured.worst_injury = Some(InjurySeverity::Serious);
        let due = obligations_for(IncidentKind::Assault, &[injured], &[]);
        assert_eq!(due, [authority(NotifiableEvent::SeriousInjury), kin(NotifiableEvent::SeriousInjury, 1)]);
        injured.declines_family_notification = true;
        let due = obligations_for(IncidentKind::Assault, &[injured], &[]);
        assert_eq!(due, [authority(NotifiableEvent::SeriousInjury)]);
    }

    #[test]
    fn a_fatal_injury_is_a_death_not_a_serious_injury() {
        let mut injured = person(1, Victim);
        injured.worst_injury = Some(InjurySeverity::Fatal);
        injured.declines_family_notification = true;
        let due = obligations_for(IncidentKind::Fight, &[injured], &[]);
        assert_eq!(due, [authority(NotifiableEvent::Death), kin(NotifiableEvent::Death, 1)]);
    }

    #[test]
    fn obligations_already_opened_are_not_opened_again() {
        let mut injured = person(1, Victim);
        injured.worst_injury = Some(InjurySeverity::Serious);
        let first = obligations_for(IncidentKind::Assault, &[injured, person(2, Victim)], &[]);
        assert_eq!(first.len(), 2);
        let mut second = person(2, Victim);
        second.worst_injury = Some(InjurySeverity::Serious);
        let later = obligations_for(IncidentKind::Assault, &[injured, second], &first);
        assert_eq!(later, [kin(NotifiableEvent::SeriousInjury, 2)], "the authority is told once per event");
    }

    #[test]
    fn deadlines_are_a_day() {
        assert_eq!(ObligationKind::NextOfKin.deadline(), Duration::hours(24));
        assert_eq!(ObligationKind::IndependentAuthority.deadline(), Duration::hours(24));
    }

    #[test]
    fn months_parse_count_and_list_their_midnights() {
        let feb = Month::parse("2024-02").unwrap();
        assert_eq!(feb.to_string(), "2024-02");
        assert_eq!(feb.midnights().count(), 29, "a leap year");
        assert_eq!(Month::parse("2026-12").unwrap().next().to_string(), "2027-01");
        assert_eq!(Month::parse("2026-01").unwrap().minus(1).to_string(), "2025-12");
        assert_eq!(Month::parse("2026-01").unwrap().minus(13).to_string(), "2024-12");
        assert_eq!(Month::parse("2025-11").unwrap().count_to(Month::parse("2026-02").unwrap()), 4);
        assert_eq!(Month::parse("2026-02").unwrap().count_to(Month::parse("2026-01").unwrap()), 0);
        for bad in ["2026-13", "2026-1", "26-01", "january", "2026-00"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        let first = Month::parse("2026-03").unwrap().midnights().next().unwrap();
        assert_eq!(crate::time::rfc3339(first), "2026-03-01T00:00:00Z");
    }
}
