//! Identity resolution: the match-key index that finds people who may be the same as an intake
//! identity, and the audited merges and un-merges of people on record.

use crate::sql::{params, OptionalExtension, Row, Session};
use serde::Serialize;

use domain::audit::Value;
use domain::identity::{index_keys, name_signature, yyyymmdd, NameWords};
use domain::person::{Identity, IdentityDocument, PersonName};
use domain::text::{Code, CountryCode, DocumentNumber, NamePart};
use domain::time::{from_micros, to_micros, Instant};

use crate::SqlTx;
use crate::{PersonId, StoreResult};

/// Stored id of a merge.
pub type MergeId = i64;

/// A person found under a match key, with what the lookup needs to judge them unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchKeyRow {
    /// The person.
    pub person: PersonId,
    /// Date of birth as YYYYMMDD.
    pub born: i64,
    /// Signature of the sounds of their name (`domain::identity::name_signature`).
    pub names: i64,
    /// How many distinct sounds their name has.
    pub words: i64,
}

/// A merge to write.
#[derive(Debug, Clone)]
pub struct NewMerge<'a> {
    /// The record merged away.
    pub duplicate: PersonId,
    /// The record that survives.
    pub survivor: PersonId,
    /// Why.
    pub reason: &'a str,
    /// When it was recorded.
    pub recorded_at: Instant,
    /// Who recorded it.
    pub actor: &'a str,
}

/// An un-merge to write.
#[derive(Debug, Clone)]
pub struct NewUnmerge<'a> {
    /// The merge undone.
    pub merge: MergeId,
    /// Why.
    pub reason: &'a str,
    /// When it was recorded.
    pub recorded_at: Instant,
    /// Who recorded it.
    pub actor: &'a str,
}

/// The undoing of a merge, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmergeRow {
    /// Why.
    pub reason: String,
    /// When it was recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Instant,
    /// Who recorded it.
    pub actor: String,
}

/// A merge as stored, with its un-merge if it was undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MergeRow {
    /// Stored id.
    pub id: MergeId,
    /// Row id of the record merged away.
    #[serde(skip)]
    pub duplicate_id: PersonId,
    /// Number of the record merged away.
    pub duplicate: String,
    /// Row id of the record that survives.
    #[serde(skip)]
    pub survivor_id: PersonId,
    /// Number of the record that survives.
    pub survivor: String,
    /// Why.
    pub reason: String,
    /// When it was recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Instant,
    /// Who recorded it.
    pub actor: String,
    /// Its undoing, if it was undone.
    pub unmerged: Option<UnmergeRow>,
}

/// Reads and writes of identity resolution, in the caller's transaction.
pub trait IdentityTx {
    /// Everyone stored under any of the match keys (a person may come once per key).
    fn match_key_rows(&mut self, keys: &[i64]) -> StoreResult<Vec<MatchKeyRow>>;
    /// People holding an identity document with exactly this number, with the document.
    fn people_with_document(&mut self, number: &str) -> StoreResult<Vec<(PersonId, IdentityDocument)>>;
    /// Write a merge of one person into another.
    fn insert_merge(&mut self, merge: &NewMerge<'_>) -> StoreResult<MergeId>;
    /// Write the undoing of a merge.
    fn insert_unmerge(&mut self, unmerge: &NewUnmerge<'_>) -> StoreResult<()>;
    /// The merge in force of a person merged away, if they are.
    fn merge_in_force(&mut self, duplicate: PersonId) -> StoreResult<Option<MergeRow>>;
    /// People merged into this one now (merges in force naming them as survivor), oldest first.
    fn merged_into_person(&mut self, survivor: PersonId) -> StoreResult<Vec<MergeRow>>;
    /// Every merge naming the person as duplicate or survivor, undone or not, oldest first.
    fn merges_of(&mut self, person: PersonId) -> StoreResult<Vec<MergeRow>>;
}

const MERGE_COLUMNS: &str = "m.id, m.duplicate_id, d.number, m.survivor_id, s.number, m.reason, m.recorded_at, m.actor,
     u.reason, u.recorded_at, u.actor
     FROM person_merge m JOIN person d ON d.id = m.duplicate_id JOIN person s ON s.id = m.survivor_id
     LEFT JOIN person_unmerge u ON u.merge_id = m.id";

fn merge_from_row(r: &Row<'_>) -> StoreResult<MergeRow> {
    let unmerged = match r.get::<_, Option<String>>(8)? {
        Some(reason) => Some(UnmergeRow { reason, recorded_at: from_micros(r.get(9)?), actor: r.get(10)? }),
        None => None,
    };
    Ok(MergeRow {
        id: r.get(0)?,
        duplicate_id: r.get(1)?,
        duplicate: r.get(2)?,
        survivor_id: r.get(3)?,
        survivor: r.get(4)?,
        reason: r.get(5)?,
        recorded_at: from_micros(r.get(6)?),
        actor: r.get(7)?,
        unmerged,
    })
}

/// The match-key rows of one person: (key, born, names, words).
fn keys_of(name: &PersonName, born: chrono::NaiveDate) -> (Vec<i64>, i64, i64, i64) {
    let words = NameWords::of(name);
    let sounds = words.sounds();
    (index_keys(name, born), yyyymmdd(born), name_signature(sounds.iter().copied()), sounds.len() as i64)
}

const INSERT_KEY: &str =
    "INSERT INTO person_match_key (key, person_id, born, names, words) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

/// Index a person just written under their match keys (called by `insert_person`): one statement
/// for all of them, as this runs on every admission.
pub(crate) fn index_person(tx: &SqlTx<'_>, person: PersonId, identity: &Identity) -> StoreResult<()> {
    let (keys, born, names, words) = keys_of(&identity.name, identity.date_of_birth);
    if keys.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..keys.len()).map(|i| format!("(?{}, ?1, ?2, ?3, ?4)", i + 5)).collect();
    let sql = format!(
        "INSERT INTO person_match_key (key, person_id, born, names, words) VALUES {} ON CONFLICT DO NOTHING",
        rows.join(", ")
    );
    let mut insert = tx.conn().prepare_cached(&sql)?;
    let mut values: Vec<i64> = vec![person, born, names, words];
    values.extend(keys);
    insert.execute(crate::sql::params_from_iter(values))?;
    Ok(())
}

/// Index everyone already on record (when the migration that creates the index runs).
pub(crate) fn fill_match_keys(conn: &dyn Session) -> StoreResult<()> {
    let mut people =
        conn.prepare("SELECT id, given_names, first_surname, second_surname, date_of_birth FROM person")?;
    let mut insert = conn.prepare(INSERT_KEY)?;
    let mut rows = people.query([])?;
    while let Some(r) = rows.next()? {
        let name = PersonName {
            given_names: NamePart::stored(r.get(1)?),
            first_surname: NamePart::stored(r.get(2)?),
            second_surname: r.get::<_, Option<String>>(3)?.map(NamePart::stored),
        };
        let id: i64 = r.get(0)?;
        // A date of birth that does not parse was written by hand; such a person is found by document only.
        let Ok(born) = r.get::<_, String>(4)?.parse::<chrono::NaiveDate>() else { continue };
        let (keys, born, names, words) = keys_of(&name, born);
        for key in keys {
            insert.execute(params![key, id, born, names, words])?;
        }
    }
    Ok(())
}

impl IdentityTx for SqlTx<'_> {
    fn match_key_rows(&mut self, keys: &[i64]) -> StoreResult<Vec<MatchKeyRow>> {
        let mut stmt =
            self.conn().prepare_cached("SELECT person_id, born, names, words FROM person_match_key WHERE key = ?1")?;
        let mut out = Vec::new();
        for key in keys {
            let mut rows = stmt.query([key])?;
            while let Some(r) = rows.next()? {
                out.push(MatchKeyRow { person: r.get(0)?, born: r.get(1)?, names: r.get(2)?, words: r.get(3)? });
            }
        }
        Ok(out)
    }

    fn people_with_document(&mut self, number: &str) -> StoreResult<Vec<(PersonId, IdentityDocument)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT person_id, kind, number, issuing_country FROM identity_document WHERE number = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([number], |r| {
            Ok((
                r.get(0)?,
                IdentityDocument {
                    kind: Code::stored(r.get(1)?),
                    number: DocumentNumber::stored(r.get(2)?),
                    issuing_country: CountryCode::stored(r.get(3)?),
                },
            ))
        })?;
        rows.collect::<Result<_, _>>()
    }

    fn insert_merge(&mut self, m: &NewMerge<'_>) -> StoreResult<MergeId> {
        self.insert_audited(
            "person_merge",
            &[
                Value::Int(m.duplicate),
                Value::Int(m.survivor),
                Value::Text(m.reason),
                Value::Int(to_micros(m.recorded_at)),
                Value::Text(m.actor),
            ],
        )
    }

    fn insert_unmerge(&mut self, u: &NewUnmerge<'_>) -> StoreResult<()> {
        self.insert_audited(
            "person_unmerge",
            &[Value::Int(u.merge), Value::Text(u.reason), Value::Int(to_micros(u.recorded_at)), Value::Text(u.actor)],
        )?;
        Ok(())
    }

    fn merge_in_force(&mut self, duplicate: PersonId) -> StoreResult<Option<MergeRow>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {MERGE_COLUMNS} WHERE m.duplicate_id = ?1 AND u.id IS NULL ORDER BY m.id DESC LIMIT 1"
        ))?;
        stmt.query_row([duplicate], merge_from_row).optional()
    }

    fn merged_into_person(&mut self, survivor: PersonId) -> StoreResult<Vec<MergeRow>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {MERGE_COLUMNS} WHERE m.survivor_id = ?1 AND u.id IS NULL ORDER BY m.id"
        ))?;
        let rows = stmt.query_map([survivor], merge_from_row)?;
        rows.collect::<Result<_, _>>()
    }

    fn merges_of(&mut self, person: PersonId) -> StoreResult<Vec<MergeRow>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {MERGE_COLUMNS} WHERE m.id IN (
                 SELECT id FROM person_merge WHERE duplicate_id = ?1 UNION SELECT id FROM person_merge WHERE survivor_id = ?1)
             ORDER BY m.id"
        ))?;
        let rows = stmt.query_map([person], merge_from_row)?;
        rows.collect::<Result<_, _>>()
    }
}
