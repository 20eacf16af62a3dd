//! `audit verify`, the same code on every backend: the chain of events, the rows each event
//! wrote, and a replay of the movements compared with the projections.
//!
//! Tables are read in pages by key (`WHERE id > ? ORDER BY id LIMIT n`), which every backend
//! answers from its primary key, on three sessions that share one snapshot.

use std::collections::HashMap;

use domain::audit::{encode_value, ChainBreak, ChainVerifier, EventBody, RowsDigest};
use domain::custody::{apply, CustodyState, Movement, OutReason, Placement, ReleaseReason};
use domain::time::from_micros;

use crate::database::{StateRow, AUDITED_TABLES, OPEN};
use std::ops::ControlFlow;

use crate::sql::{Row, Rows, Session};
use crate::{AuditVerification, PersonId, StoreError, StoreResult};

/// Rows read at a time from each table.
const PAGE: u32 = 4096;

/// Call `f` on every row of `select` (whose first column is the integer key `key`), in key
/// order, a page at a time, until it breaks.
fn each_row<R>(
    session: &dyn Session,
    select: &str,
    key: &str,
    mut f: impl FnMut(&Row<'_>) -> StoreResult<ControlFlow<R>>,
) -> StoreResult<Option<R>> {
    let sql = format!("{select} WHERE {key} > ?1 ORDER BY {key} LIMIT {PAGE}");
    let mut last = i64::MIN;
    loop {
        let mut page = session.query(&sql, [last])?;
        let mut read = 0;
        while let Some(row) = page.next()? {
            read += 1;
            last = row.get(0)?;
            if let ControlFlow::Break(r) = f(&row)? {
                return Ok(Some(r));
            }
        }
        if read < PAGE {
            return Ok(None);
        }
    }
}

pub(crate) fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One audited table read in insertion order, a page at a time.
struct TableCursor<'a> {
    session: &'a dyn Session,
    name: &'static str,
    sql: String,
    page: Rows,
    /// Id of the last row read, where the next page starts.
    last_id: i64,
    /// Whether the table has no more pages.
    exhausted: bool,
    /// (id, audit_seq, canonical bytes) of the next unread row.
    current: Option<(i64, i64, Vec<u8>)>,
}

impl<'a> TableCursor<'a> {
    fn new(session: &'a dyn Session, name: &'static str) -> StoreResult<Self> {
        let sql = format!("SELECT * FROM {name} WHERE id > ?1 ORDER BY id LIMIT {PAGE}");
        let mut cursor = TableCursor {
            session,
            name,
            sql,
            page: Rows::default(),
            last_id: i64::MIN,
            exhausted: false,
            current: None,
        };
        cursor.advance()?;
        Ok(cursor)
    }

    fn advance(&mut self) -> StoreResult<()> {
        let mut bytes = self.current.take().map(|(_, _, mut b)| {
            b.clear();
            b
        });
        loop {
            if let Some(row) = self.page.next()? {
                let bytes_ref = bytes.get_or_insert_with(|| Vec::with_capacity(256));
                for i in 0..row.len() {
                    encode_value(bytes_ref, &row.get_ref(i)?.audit_value());
                }
                let id = row.get::<_, i64>(0)?;
                let seq = row.get::<_, Option<i64>>(row.len() - 1)?.unwrap_or(-1);
                self.last_id = id;
                self.current = Some((id, seq, bytes.unwrap_or_default()));
                return Ok(());
            }
            if self.exhausted {
                self.current = None;
                return Ok(());
            }
            self.page = self.session.query(&self.sql, [self.last_id])?;
            self.exhausted = self.page.len() < PAGE as usize;
        }
    }
}
/// The digest of the rows that name one event, or rows found out of order.
enum RowGroup {
    Rows { seq: i64, digest: [u8; 32], rows: u64 },
    OutOfOrder(ChainBreak),
}

/// Read every audited table in insertion order and digest the rows of each event, in event order.
fn row_groups(session: &dyn Session, out: std::sync::mpsc::SyncSender<Vec<RowGroup>>) -> StoreResult<()> {
    let mut cursors = Vec::new();
    for table in AUDITED_TABLES {
        cursors.push(TableCursor::new(session, table)?);
    }
    let mut batch = Vec::with_capacity(4096);
    let mut last = 0i64;
    let mut digest = RowsDigest::default();
    while let Some(seq) = cursors.iter().filter_map(|c| c.current.as_ref().map(|r| r.1)).min() {
        if seq <= last {
            let cursor = cursors.iter().find(|c| c.current.as_ref().is_some_and(|r| r.1 == seq)).expect("min exists");
            let id = cursor.current.as_ref().map(|r| r.0).unwrap_or_default();
            batch.push(RowGroup::OutOfOrder(ChainBreak {
                seq,
                reason: format!("{} row {id} names event {seq} but was written after a later event", cursor.name),
            }));
            break;
        }
        let mut rows = 0;
        for cursor in cursors.iter_mut() {
            while let Some((_, row_seq, bytes)) = &cursor.current {
                if *row_seq != seq {
                    break;
                }
                digest.add_row(cursor.name, bytes);
                rows += 1;
                cursor.advance()?;
            }
        }
        batch.push(RowGroup::Rows { seq, digest: digest.finish(), rows });
        last = seq;
        if batch.len() == batch.capacity() && out.send(std::mem::replace(&mut batch, Vec::with_capacity(4096))).is_err()
        {
            return Ok(());
        }
    }
    let _ = out.send(batch);
    Ok(())
}

/// Chain, rows and replay are checked on three sessions at once, on one snapshot, so the check
/// uses two cores.
pub(crate) fn verify(
    sessions: Vec<Box<dyn Session + Send + '_>>,
    progress: &mut dyn FnMut(u64, u64),
) -> StoreResult<AuditVerification> {
    let [events, rows, replay]: [Box<dyn Session + Send + '_>; 3] =
        sessions.try_into().map_err(|_| StoreError::Backend("verification needs three sessions".into()))?;
    // max(seq) reads one page; a count would scan the whole table.
    let total = (&*events as &dyn Session)
        .query_row("SELECT coalesce(max(seq), 0) FROM audit_event", [], |r| r.get::<_, i64>(0))? as u64;
    std::thread::scope(|scope| -> StoreResult<AuditVerification> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(8);
        let rows_thread = scope.spawn(move || row_groups(&*rows, sender));
        let replay_thread = scope.spawn(move || -> StoreResult<(Vec<String>, u64)> {
            let mut problems = replay_movements(&*replay)?;
            problems.extend(crate::staff::staff_problems(&*replay)?);
            let (reads, read_problem) = crate::staff::read_log_problems(&*replay)?;
            problems.extend(read_problem);
            Ok((problems, reads))
        });
        let (chain, rows, broken) = check_chain(&*events, receiver, total, progress)?;
        rows_thread.join().map_err(|_| StoreError::Backend("row verification panicked".into()))??;
        let (problems, reads) = replay_thread.join().map_err(|_| StoreError::Backend("replay panicked".into()))??;
        Ok(AuditVerification {
            events: chain.verified() as u64,
            head_hash: hex_of(&chain.head()),
            rows,
            reads,
            projection_problems: if broken.is_none() { problems } else { Vec::new() },
            broken,
        })
    })
}

/// Walk the events in order, checking each link and comparing each event's row digest with the rows found.
fn check_chain(
    conn: &dyn Session,
    groups: std::sync::mpsc::Receiver<Vec<RowGroup>>,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> StoreResult<(ChainVerifier, u64, Option<ChainBreak>)> {
    let no_rows = RowsDigest::default().finish();
    let mut pending = groups.iter().flatten().peekable();
    let mut chain = ChainVerifier::default();
    let mut rows_verified = 0u64;
    let select = "SELECT seq, at, actor, action, subject, payload, rows_sha256, prev_hash, hash FROM audit_event";
    let broken = each_row(conn, select, "seq", |e| {
        let seq: i64 = e.get(0)?;
        let stored_rows = e.get_ref(6)?.as_blob().unwrap_or(&[]);
        let expected = match pending.peek() {
            Some(RowGroup::OutOfOrder(b)) => return Ok(ControlFlow::Break(b.clone())),
            Some(RowGroup::Rows { seq: row_seq, .. }) if *row_seq < seq => {
                let reason = format!("stored rows name event {row_seq}, which does not exist");
                return Ok(ControlFlow::Break(ChainBreak { seq: *row_seq, reason }));
            }
            Some(RowGroup::Rows { seq: row_seq, digest, rows }) if *row_seq == seq => {
                rows_verified += rows;
                let digest = *digest;
                pending.next();
                digest
            }
            _ => no_rows,
        };
        if stored_rows != expected {
            let reason = "the rows this event wrote were altered, added or removed since it was recorded".to_string();
            return Ok(ControlFlow::Break(ChainBreak { seq, reason }));
        }
        let text = |i: usize| -> StoreResult<&str> { Ok(e.get_ref(i)?.as_str().unwrap_or("\u{fffd}")) };
        let body = EventBody {
            seq,
            at_micros: e.get(1)?,
            actor: text(2)?,
            action: text(3)?,
            subject: text(4)?,
            payload: text(5)?,
            rows_sha256: stored_rows,
        };
        if let Err(b) =
            chain.check(&body, e.get_ref(7)?.as_blob().unwrap_or(&[]), e.get_ref(8)?.as_blob().unwrap_or(&[]))
        {
            return Ok(ControlFlow::Break(b));
        }
        if chain.verified() % 65_536 == 0 {
            progress(chain.verified() as u64, total);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if broken.is_some() {
        return Ok((chain, rows_verified, broken));
    }
    progress(chain.verified() as u64, total);
    let leftover = match pending.next() {
        Some(RowGroup::OutOfOrder(b)) => Some(b),
        Some(RowGroup::Rows { seq, .. }) => {
            Some(ChainBreak { seq, reason: format!("stored rows name event {seq}, which does not exist") })
        }
        None => None,
    };
    Ok((chain, rows_verified, leftover))
}

/// (person, facility, unit or transit flag, cell or 0, bed, from, to): stays and presences in one shape.
type Interval = (i64, i64, i64, i64, Option<i64>, i64, i64);

/// Replay every movement through the state machine and compare the result with the projections.
fn replay_movements(conn: &dyn Session) -> StoreResult<Vec<String>> {
    let mut problems = Vec::new();
    let mut states: HashMap<i64, (CustodyState, i64)> = HashMap::new();
    let mut stays: Vec<Interval> = Vec::new();
    let mut presences: Vec<Interval> = Vec::new();
    let mut open_stay: HashMap<i64, usize> = HashMap::new();
    let mut open_presence: HashMap<i64, usize> = HashMap::new();
    let unit_of: HashMap<i64, i64> = conn
        .prepare("SELECT id, unit_id FROM cell")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let select = "SELECT id, person_id, booking_id, kind, facility_id, cell_id, bed_id, to_facility_id, reason, occurred_at FROM movement";
    each_row(conn, select, "id", |r| -> StoreResult<ControlFlow<()>> {
        let (id, person, booking, facility, at): (i64, i64, i64, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(4)?, r.get(9)?);
        let kind = r.get_ref(3)?.as_str().unwrap_or("");
        let reason = r.get_ref(8)?.as_str().ok();
        let placement = || -> Option<Placement> { Some(Placement { cell: r.get(5).ok()?, bed: r.get(6).ok()? }) };
        let movement = match kind {
            "admission" => Some(Movement::Admission { facility }),
            "placement" => placement().map(Movement::Placement),
            "cell_move" => placement().map(Movement::CellMove),
            "out" => reason.and_then(OutReason::parse).map(|reason| Movement::Out { reason }),
            "return" => Some(Movement::Return),
            "transfer_out" => r.get::<_, Option<i64>>(7)?.map(|to| Movement::TransferOut { to }),
            "receipt" => Some(Movement::Receipt { facility }),
            "release" => reason.and_then(ReleaseReason::parse).map(|reason| Movement::Release { reason }),
            _ => None,
        };
        let Some(movement) = movement else {
            problems.push(format!("movement {id} has an unknown or incomplete kind `{kind}`"));
            return Ok(ControlFlow::Continue(()));
        };
        let state = states.get(&person).map(|s| s.0).unwrap_or(CustodyState::FREE);
        match apply(state, movement, from_micros(at)) {
            Ok(next) => {
                states.insert(person, (next, booking));
            }
            Err(refused) => {
                problems
                    .push(format!("movement {id} of {} is impossible in sequence: {refused}", number_of(conn, person)));
                return Ok(ControlFlow::Continue(()));
            }
        }
        let close = |list: &mut Vec<Interval>, open: &mut HashMap<i64, usize>| {
            if let Some(i) = open.remove(&person) {
                list[i].6 = at;
            }
        };
        let open_new = |list: &mut Vec<Interval>, open: &mut HashMap<i64, usize>, row: Interval| {
            open.insert(person, list.len());
            list.push(row);
        };
        match movement {
            Movement::Admission { facility } => {
                open_new(&mut presences, &mut open_presence, (person, facility, 0, 0, None, at, OPEN))
            }
            Movement::Placement(p) | Movement::CellMove(p) => {
                close(&mut stays, &mut open_stay);
                let unit = unit_of.get(&p.cell).copied().unwrap_or(-1);
                open_new(&mut stays, &mut open_stay, (person, facility, unit, p.cell, p.bed, at, OPEN));
            }
            Movement::Out { .. } | Movement::Return => {}
            Movement::TransferOut { to } => {
                close(&mut stays, &mut open_stay);
                close(&mut presences, &mut open_presence);
                open_new(&mut presences, &mut open_presence, (person, to, 1, 0, None, at, OPEN));
            }
            Movement::Receipt { facility } => {
                close(&mut presences, &mut open_presence);
                open_new(&mut presences, &mut open_presence, (person, facility, 0, 0, None, at, OPEN));
            }
            Movement::Release { .. } => {
                close(&mut stays, &mut open_stay);
                close(&mut presences, &mut open_presence);
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    compare(
        conn,
        "stay",
        "SELECT id, person_id, facility_id, unit_id, cell_id, bed_id, from_at, to_at FROM stay",
        stays,
        &mut problems,
    )?;
    compare(
        conn,
        "presence",
        "SELECT id, person_id, facility_id, in_transit, 0, NULL, from_at, to_at FROM presence",
        presences,
        &mut problems,
    )?;
    let mut seen = 0usize;
    let select =
        "SELECT person_id, booking_id, status, facility_id, cell_id, bed_id, out_reason, transit_to, since FROM custody_state";
    each_row(conn, select, "person_id", |r| -> StoreResult<ControlFlow<()>> {
        seen += 1;
        let person: i64 = r.get(0)?;
        let stored = StateRow {
            booking: r.get(1)?,
            status: r.get(2)?,
            facility: r.get(3)?,
            cell: r.get(4)?,
            bed: r.get(5)?,
            out: r.get(6)?,
            transit_to: r.get(7)?,
            since: r.get(8)?,
        };
        if states.get(&person).map(|(state, booking)| StateRow::of(*booking, state)).as_ref() != Some(&stored) {
            problems.push(format!(
                "the current custody state of {} does not follow from their movements",
                number_of(conn, person)
            ));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if seen != states.len() {
        problems.push(format!("{} people have movements but {seen} have a current custody state", states.len()));
    }
    Ok(problems)
}

/// A person's number for messages, or their row id if even that is unreadable.
fn number_of(conn: &dyn Session, person: PersonId) -> String {
    conn.query_row("SELECT number FROM person WHERE id = ?1", [person], |r| r.get(0))
        .unwrap_or_else(|_| format!("person row {person}"))
}

/// Compare the intervals `select` reads (an id, then the seven columns of an [`Interval`]) with
/// those a replay expects.
fn compare(
    conn: &dyn Session,
    table: &str,
    select: &str,
    mut expected: Vec<Interval>,
    problems: &mut Vec<String>,
) -> StoreResult<()> {
    let mut stored: Vec<Interval> = Vec::with_capacity(expected.len());
    each_row(conn, select, "id", |r| -> StoreResult<ControlFlow<()>> {
        stored.push((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?));
        Ok(ControlFlow::Continue(()))
    })?;
    expected.sort_unstable();
    stored.sort_unstable();
    if expected != stored {
        let differing =
            expected.iter().zip(&stored).filter(|(a, b)| a != b).count() + expected.len().abs_diff(stored.len());
        problems.push(format!("{differing} {table} intervals differ from a replay of the movements"));
    }
    Ok(())
}
