//! The movement state machine of one person: admitted → in cell ⇄ out → in transit → received … → released.

use serde::{Deserialize, Serialize};

use crate::time::{rfc3339, Instant};

/// Stored id of a facility.
pub type FacilityId = i64;
/// Stored id of a cell.
pub type CellId = i64;
/// Stored id of a bed.
pub type BedId = i64;

/// Why a person is temporarily out of the facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OutReason {
    /// Taken to court.
    Court,
    /// Taken to hospital.
    Hospital,
    /// Temporary absence (leave, funeral, work).
    TemporaryAbsence,
    /// Under escort elsewhere.
    Escort,
}

impl OutReason {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            OutReason::Court => "court",
            OutReason::Hospital => "hospital",
            OutReason::TemporaryAbsence => "temporary_absence",
            OutReason::Escort => "escort",
        }
    }

    /// Parse the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Every reason, for listings and parsing.
    pub const ALL: [OutReason; 4] =
        [OutReason::Court, OutReason::Hospital, OutReason::TemporaryAbsence, OutReason::Escort];
}

/// Why custody ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReleaseReason {
    /// Sentence served.
    SentenceServed,
    /// Released on bail.
    Bail,
    /// Acquitted.
    Acquittal,
    /// Charges dropped.
    ChargesDropped,
    /// Released by a court order.
    CourtOrder,
    /// Pardon or amnesty.
    Pardon,
    /// Handed to another authority (deportation, extradition).
    HandedOver,
    /// Died in custody.
    Death,
    /// Another reason, explained in the note.
    Other,
}

impl ReleaseReason {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::SentenceServed => "sentence_served",
            ReleaseReason::Bail => "bail",
            ReleaseReason::Acquittal => "acquittal",
            ReleaseReason::ChargesDropped => "charges_dropped",
            ReleaseReason::CourtOrder => "court_order",
            ReleaseReason::Pardon => "pardon",
            ReleaseReason::HandedOver => "handed_over",
            ReleaseReason::Death => "death",
            ReleaseReason::Other => "other",
        }
    }

    /// Parse the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Every reason, for listings and parsing.
    pub const ALL: [ReleaseReason; 9] = [
        ReleaseReason::SentenceServed,
        ReleaseReason::Bail,
        ReleaseReason::Acquittal,
        ReleaseReason::ChargesDropped,
        ReleaseReason::CourtOrder,
        ReleaseReason::Pardon,
        ReleaseReason::HandedOver,
        ReleaseReason::Death,
        ReleaseReason::Other,
    ];
}

/// Where a person is placed inside a facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The cell.
    pub cell: CellId,
    /// The bed, when one is assigned; overcrowded cells hold people without beds.
    pub bed: Option<BedId>,
}

/// Where a person stands in custody right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CustodyStatus {
    /// Not in custody: never admitted, or released.
    Free,
    /// Held at a facility, possibly placed in a cell, possibly out for a while.
    Held {
        /// The facility responsible for the person.
        facility: FacilityId,
        /// The cell (and bed) they are placed in, if any.
        placement: Option<Placement>,
        /// Set while the person is out of the facility; the placement is kept.
        out: Option<OutReason>,
    },
    /// Sent from one facility to another and not yet received.
    InTransit {
        /// Sending facility.
        from: FacilityId,
        /// Receiving facility.
        to: FacilityId,
    },
}

/// A person's custody state and the time of their latest movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyState {
    /// Where they stand.
    pub status: CustodyStatus,
    /// The time the latest movement happened; later movements cannot be earlier.
    pub since: Option<Instant>,
}

impl CustodyState {
    /// A person with no custody history.
    pub const FREE: CustodyState = CustodyState { status: CustodyStatus::Free, since: None };
}

/// A movement someone asks to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Movement {
    /// Admission at a facility, starting a custody episode.
    Admission {
        /// The admitting facility.
        facility: FacilityId,
    },
    /// First placement in a cell after admission or receipt.
    Placement(Placement),
    /// Move from one cell (or bed) to another in the same facility.
    CellMove(Placement),
    /// Leave the facility for a while.
    Out {
        /// Why.
        reason: OutReason,
    },
    /// Come back from being out.
    Return,
    /// Sent to another facility.
    TransferOut {
        /// Receiving facility.
        to: FacilityId,
    },
    /// Received at the facility named in the transfer.
    Receipt {
        /// The receiving facility.
        facility: FacilityId,
    },
    /// End of custody.
    Release {
        /// Why.
        reason: ReleaseReason,
    },
}

impl Movement {
    /// Stored form of the movement kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Movement::Admission { .. } => "admission",
            Movement::Placement(_) => "placement",
            Movement::CellMove(_) => "cell_move",
            Movement::Out { .. } => "out",
            Movement::Return => "return",
            Movement::TransferOut { .. } => "transfer_out",
            Movement::Receipt { .. } => "receipt",
            Movement::Release { .. } => "release",
        }
    }

    /// The movement in words, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Movement::CellMove(_) => "cell move",
            Movement::TransferOut { .. } => "transfer",
            Movement::Out { .. } => "departure",
            other => other.kind(),
        }
    }
}

/// Why a movement cannot be recorded. The message says it in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MovementRefused {
    /// The movement would happen before the latest recorded one.
    #[error("the {kind} would happen at {at}, before the latest recorded movement at {latest}; history cannot run backwards")]
    BeforeLatest {
        /// Movement kind.
        kind: &'static str,
        /// Requested time.
        at: String,
        /// Latest movement time.
        latest: String,
    },
    /// The person is not in custody.
    #[error("the person is not in custody, so a {kind} cannot be recorded (admit them first)")]
    NotInCustody {
        /// Movement kind.
        kind: &'static str,
    },
    /// Admission of someone already held.
    #[error("the person is already in custody; release or transfer them before a new admission")]
    AlreadyInCustody,
    /// The person is out of the facility.
    #[error("the person is out ({reason}); record their return before a {kind}")]
    IsOut {
        /// Movement kind.
        kind: &'static str,
        /// Why they are out.
        reason: &'static str,
    },
    /// The person is in transit.
    #[error("the person is in transit to another facility; only their receipt or release can be recorded")]
    OnTheWay,
    /// First placement of someone already placed.
    #[error("the person is already placed in a cell; record a cell move instead")]
    AlreadyPlaced,
    /// Cell move of someone not placed.
    #[error("the person is not placed in any cell yet; record a placement instead")]
    NotPlaced,
    /// Move to the place they are already in.
    #[error("the person is already in that cell and bed")]
    SamePlace,
    /// Return of someone who is not out.
    #[error("the person is not out, so there is no return to record")]
    NotOut,
    /// Transfer to the facility they are already at.
    #[error("the person is already at that facility; a transfer needs a different destination")]
    TransferToSameFacility,
    /// Receipt at a facility other than the destination.
    #[error("the person is in transit to another facility, not this one")]
    WrongDestination,
    /// Receipt of someone not in transit.
    #[error("the person is not in transit, so there is no receipt to record")]
    NotInTransit,
}

/// The state after a movement, or why the movement is impossible.
/// Facility membership of cells and bed availability are checked by the caller, which knows the estate.
pub fn apply(state: CustodyState, movement: Movement, at: Instant) -> Result<CustodyState, MovementRefused> {
    use CustodyStatus::*;
    use MovementRefused::*;
    let kind = movement.describe();
    if let Some(latest) = state.since {
        if at < latest {
            return Err(BeforeLatest { kind, at: rfc3339(at), latest: rfc3339(latest) });
        }
    }
    let status = match (state.status, movement) {
        (Free, Movement::Admission { facility }) => Held { facility, placement: None, out: None },
        (Free, Movement::Receipt { .. }) => return Err(NotInTransit),
        (Free, _) => return Err(NotInCustody { kind }),
        (Held { .. } | InTransit { .. }, Movement::Admission { .. }) => return Err(AlreadyInCustody),
        (InTransit { to, .. }, Movement::Receipt { facility }) => {
            if facility != to {
                return Err(WrongDestination);
            }
            Held { facility, placement: None, out: None }
        }
        // Death on the way, or a court ordering release during a transfer, ends custody there.
        (InTransit { .. }, Movement::Release { .. }) => Free,
        (InTransit { .. }, _) => return Err(OnTheWay),
        (Held { .. }, Movement::Receipt { .. }) => return Err(NotInTransit),
        // A court may release someone who is out at a hearing, so release does not require a return first.
        (Held { .. }, Movement::Release { .. }) => Free,
        (Held { facility, placement, out: Some(_) }, Movement::Return) => Held { facility, placement, out: None },
        (Held { out: None, .. }, Movement::Return) => return Err(NotOut),
        (Held { out: Some(reason), .. }, _) => return Err(IsOut { kind, reason: reason.as_str() }),
        (Held { facility, placement: None, .. }, Movement::Placement(p)) => {
            Held { facility, placement: Some(p), out: None }
        }
        (Held { placement: Some(_), .. }, Movement::Placement(_)) => return Err(AlreadyPlaced),
        (Held { placement: None, .. }, Movement::CellMove(_)) => return Err(NotPlaced),
        (Held { facility, placement: Some(current), .. }, Movement::CellMove(p)) => {
            if current == p {
                return Err(SamePlace);
            }
            Held { facility, placement: Some(p), out: None }
        }
        (Held { facility, placement, .. }, Movement::Out { reason }) => Held { facility, placement, out: Some(reason) },
        (Held { facility, .. }, Movement::TransferOut { to }) => {
            if to == facility {
                return Err(TransferToSameFacility);
            }
            InTransit { from: facility, to }
        }
    };
    Ok(CustodyState { status, since: Some(at) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use proptest::prelude::*;

    fn t(h: i64) -> Instant {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    fn cell(c: CellId) -> Placement {
        Placement { cell: c, bed: None }
    }

    #[test]
    fn a_full_custody_episode_runs_through() {
        let mut s = CustodyState::FREE;
        for (h, m) in [
            Movement::Admission { facility: 1 },
            Movement::Placement(cell(10)),
            Movement::Out { reason: OutReason::Court },
            Movement::Return,
            Movement::CellMove(cell(11)),
            Movement::TransferOut { to: 2 },
            Movement::Receipt { facility: 2 },
            Movement::Placement(cell(20)),
            Movement::Release { reason: ReleaseReason::Bail },
        ]
        .into_iter()
        .enumerate()
        {
            s = apply(s, m, t(h as i64)).unwrap_or_else(|e| panic!("step {h} {m:?}: {e}"));
        }
        assert_eq!(s.status, CustodyStatus::Free);
    }

    #[test]
    fn return_keeps_the_cell() {
        let s = apply(CustodyState::FREE, Movement::Admission { facility: 1 }, t(0)).unwrap();
        let s = apply(s, Movement::Placement(cell(10)), t(1)).unwrap();
        let s = apply(s, Movement::Out { reason: OutReason::Hospital }, t(2)).unwrap();
        let s = apply(s, Movement::Return, t(3)).unwrap();
        assert_eq!(s.status, CustodyStatus::Held { facility: 1, placement: Some(cell(10)), out: None });
    }

    #[test]
    fn impossible_sequences_are_refused_with_a_reason() {
        let free = CustodyState::FREE;
        assert_eq!(
            apply(free, Movement::Release { reason: ReleaseReason::Bail }, t(0)),
            Err(MovementRefused::NotInCustody { kind: "release" })
        );
        let held = apply(free, Movement::Admission { facility: 1 }, t(5)).unwrap();
        assert!(matches!(
            apply(held, Movement::Release { reason: ReleaseReason::Bail }, t(4)),
            Err(MovementRefused::BeforeLatest { .. })
        ));
        let out = apply(held, Movement::Out { reason: OutReason::Court }, t(6)).unwrap();
        assert_eq!(
            apply(out, Movement::Placement(cell(3)), t(7)),
            Err(MovementRefused::IsOut { kind: "placement", reason: "court" })
        );
        let released = apply(held, Movement::Release { reason: ReleaseReason::Bail }, t(6)).unwrap();
        assert_eq!(
            apply(released, Movement::Placement(cell(3)), t(7)),
            Err(MovementRefused::NotInCustody { kind: "placement" })
        );
        assert_eq!(apply(held, Movement::Admission { facility: 2 }, t(7)), Err(MovementRefused::AlreadyInCustody));
        let transit = apply(held, Movement::TransferOut { to: 2 }, t(7)).unwrap();
        assert_eq!(apply(transit, Movement::Receipt { facility: 3 }, t(8)), Err(MovementRefused::WrongDestination));
        assert_eq!(apply(transit, Movement::Placement(cell(1)), t(8)), Err(MovementRefused::OnTheWay));
        let died_on_the_way = apply(transit, Movement::Release { reason: ReleaseReason::Death }, t(9)).unwrap();
        assert_eq!(died_on_the_way.status, CustodyStatus::Free);
        assert_eq!(apply(held, Movement::TransferOut { to: 1 }, t(8)), Err(MovementRefused::TransferToSameFacility));
        assert!(apply(held, Movement::Release { reason: ReleaseReason::Bail }, t(6))
            .unwrap()
            .status
            .eq(&CustodyStatus::Free));
    }

    #[test]
    fn a_person_out_at_court_can_be_released_there() {
        let s = apply(CustodyState::FREE, Movement::Admission { facility: 1 }, t(0)).unwrap();
        let s = apply(s, Movement::Out { reason: OutReason::Court }, t(1)).unwrap();
        let s = apply(s, Movement::Release { reason: ReleaseReason::Acquittal }, t(2)).unwrap();
        assert_eq!(s.status, CustodyStatus::Free);
    }

    fn any_movement() -> impl Strategy<Value = Movement> {
        prop_oneof![
            (1i64..4).prop_map(|facility| Movement::Admission { facility }),
            (1i64..4, proptest::option::of(1i64..3))
                .prop_map(|(c, b)| Movement::Placement(Placement { cell: c, bed: b })),
            (1i64..4, proptest::option::of(1i64..3))
                .prop_map(|(c, b)| Movement::CellMove(Placement { cell: c, bed: b })),
            Just(Movement::Out { reason: OutReason::Court }),
            Just(Movement::Return),
            (1i64..4).prop_map(|to| Movement::TransferOut { to }),
            (1i64..4).prop_map(|facility| Movement::Receipt { facility }),
            Just(Movement::Release { reason: ReleaseReason::Bail }),
        ]
    }

    proptest! {
        /// Whatever is asked, the accepted movements keep the state consistent:
        /// time never runs backwards, a person is never placed while out, and a refusal changes nothing.
        #[test]
        fn accepted_histories_stay_consistent(steps in proptest::collection::vec((any_movement(), -2i64..5), 1..60)) {
            let mut s = CustodyState::FREE;
            let mut clock = 0i64;
            for (m, dt) in steps {
                clock += dt;
                let before = s;
                match apply(s, m, t(clock)) {
                    Ok(next) => {
                        prop_assert!(before.since.is_none_or(|since| since <= t(clock)));
                        if let CustodyStatus::Held { out: Some(_), placement, .. } = next.status {
                            // Going out never changes the placement.
                            if let CustodyStatus::Held { placement: p0, .. } = before.status {
                                prop_assert_eq!(placement, p0);
                            }
                        }
                        if matches!(m, Movement::Placement(_) | Movement::CellMove(_)) {
                            let was_in = matches!(before.status, CustodyStatus::Held { out: None, .. });
                            prop_assert!(was_in);
                        }
                        s = next;
                    }
                    Err(_) => prop_assert_eq!(s, before),
                }
            }
        }
    }
}
