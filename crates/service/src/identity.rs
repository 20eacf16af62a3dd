//! Identity resolution at intake (DOMAIN.md): the people on record who may be the person being
//! admitted, best first, each with a score and the reasons in words — nothing is merged. Merges
//! and un-merges are explicit, audited commands, and each person's lineage of merges is kept.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use domain::custody::CustodyStatus;
use domain::identity::{
    compare_documents, document_number_key, probe_keys, resemblance_of, worth_comparing, yyyymmdd, DocumentAgreement,
    NameWords,
};
use domain::person::{Identity, Sex};
use domain::text::LongText;
use domain::time::rfc3339;
use store::identity::{IdentityTx, MergeRow, NewMerge, NewUnmerge};
use store::{PersonId, Store, Tx};

use crate::{audit, Context, Service, ServiceError, ServiceResult};

/// Candidates listed when the caller does not say how many.
pub const DEFAULT_CANDIDATES: u32 = 10;
/// Most candidates one request may ask for.
pub const MAX_CANDIDATES: u32 = 50;
/// Longest chain of merges followed to find the record that survives.
const MAX_CHAIN: usize = 64;

/// Who may be the person at intake: their identity as the admission gives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CandidatesRequest {
    /// The intake identity: names, date of birth, sex, nationality, documents.
    pub identity: Identity,
    /// At most this many candidates, 1 to 50 (default 10).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A person on record who may be the person at intake.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Candidate {
    /// Person number.
    pub number: String,
    /// Name as staff read it.
    pub name: String,
    /// Date of birth on record.
    pub date_of_birth: NaiveDate,
    /// Sex on record.
    pub sex: Sex,
    /// Nationality on record.
    pub nationality: String,
    /// Facilities answerable for the person that the caller may see (where held, or last held).
    pub facilities: Vec<String>,
    /// Whether the person is in custody now.
    pub in_custody: bool,
    /// Whether an identity document of the intake (type, number and issuing country) is theirs.
    pub same_document: bool,
    /// 0 to 1: 1 is the same document, name and date of birth.
    pub score: f64,
    /// Why they may be the same person, strongest first.
    pub reasons: Vec<String>,
}

/// Merge a duplicate record into the one that survives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MergeRequest {
    /// Number of the record that survives.
    pub into: String,
    /// Why they are the same person (which documents or facts were checked).
    pub reason: LongText,
}

/// Undo the merge of a record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmergeRequest {
    /// Why the merge was wrong.
    pub reason: LongText,
}

/// A merge recorded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Merged {
    /// Id of the merge.
    pub merge: i64,
    /// The record merged away.
    pub duplicate: String,
    /// The record that survives.
    pub into: String,
    /// The audit event.
    pub audit_seq: i64,
}

/// An un-merge recorded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unmerged {
    /// Id of the merge undone.
    pub merge: i64,
    /// The record that stands on its own again.
    pub duplicate: String,
    /// The record it had been merged into.
    pub was_merged_into: String,
    /// The audit event.
    pub audit_seq: i64,
}

/// The merges of a person: whom they are merged into now, who is merged into them now, and
/// every merge and un-merge naming them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lineage {
    /// Person number.
    pub number: String,
    /// The record this one is merged into now, if it is.
    pub merged_into: Option<String>,
    /// Records merged into this one now.
    pub merged_from: Vec<String>,
    /// Every merge naming the person, oldest first, each with its un-merge if undone.
    pub history: Vec<MergeRow>,
}

/// The intake identity in a JSON text: the `identity` object of a whole admission, or of a file
/// holding just `{"identity": {…}}`. Wrong fields are named with their path.
pub fn intake_from_json(text: &str) -> ServiceResult<Identity> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ServiceError::field("identity", format!("is not valid JSON: {e}")))?;
    let identity = value
        .get_mut("identity")
        .map(serde_json::Value::take)
        .ok_or_else(|| ServiceError::field("identity", "is required: give the intake identity as in an admission"))?;
    serde_path_to_error::deserialize(identity).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "identity".to_string() } else { format!("identity.{path}") };
        ServiceError::field(field, e.inner().to_string())
    })
}

fn limit_of(limit: Option<u32>) -> ServiceResult<usize> {
    match limit.unwrap_or(DEFAULT_CANDIDATES) {
        n @ 1..=MAX_CANDIDATES => Ok(n as usize),
        _ => Err(ServiceError::field("limit", format!("must be between 1 and {MAX_CANDIDATES}"))),
    }
}

fn check_intake(identity: &Identity) -> ServiceResult<()> {
    let named = NameWords::of(&identity.name).all().next().is_some();
    let documented = identity.documents.iter().any(|d| !document_number_key(&d.number).is_empty());
    if !named && !documented {
        return Err(ServiceError::field("identity.first_surname", "give a name or a document number to look for"));
    }
    Ok(())
}

/// The spellings a document number may be stored under: as given, in capitals, without
/// separators, and as a DUI (`01234567-8`) when it has its nine digits.
pub(crate) fn number_spellings(number: &str) -> Vec<String> {
    let key = document_number_key(number);
    let mut spellings = vec![number.trim().to_string(), number.trim().to_uppercase(), key.clone()];
    if key.len() == 9 && key.chars().all(|c| c.is_ascii_digit()) {
        spellings.push(format!("{}-{}", &key[..8], &key[8..]));
    }
    spellings.retain(|s| !s.is_empty());
    spellings.sort();
    spellings.dedup();
    spellings
}

/// The record a person's merges lead to: themself unless merged away.
pub(crate) fn survivor_of<T: Tx>(tx: &mut T, person: PersonId) -> ServiceResult<(PersonId, Option<String>)> {
    let mut current = person;
    let mut via = None;
    for _ in 0..MAX_CHAIN {
        match tx.merge_in_force(current)? {
            Some(merge) => {
                via.get_or_insert(merge.duplicate);
                current = merge.survivor_id;
            }
            None => return Ok((current, via)),
        }
    }
    Err(ServiceError::Internal(format!("the merges of person {person} go round in a circle")))
}

/// The people on record who may be the person of an intake identity, best first, at most `limit`.
/// People merged away are replaced by the record they were merged into. Only people `visible`
/// lets the caller see (by a facility answerable for them), or never held anywhere, are listed.
pub fn candidates_in<T: Tx>(
    tx: &mut T,
    identity: &Identity,
    limit: usize,
    codes: &HashMap<i64, String>,
    visible: &dyn Fn(&str) -> bool,
) -> ServiceResult<Vec<Candidate>> {
    let words = NameWords::of(&identity.name);
    let mut compare: Vec<PersonId> = Vec::new();
    for document in &identity.documents {
        for number in number_spellings(&document.number) {
            compare.extend(tx.people_with_document(&number)?.into_iter().map(|(person, _)| person));
        }
    }
    let sounds = words.sounds();
    if !sounds.is_empty() {
        let born = yyyymmdd(identity.date_of_birth);
        for row in tx.match_key_rows(&probe_keys(&words, identity.date_of_birth))? {
            if worth_comparing(&sounds, born, row.born, row.names, row.words) {
                compare.push(row.person);
            }
        }
    }
    compare.sort_unstable();
    compare.dedup();
    // Best resemblance per surviving record, and through which merged-away record it was found.
    let mut best: HashMap<PersonId, (f64, Vec<String>, bool)> = HashMap::new();
    for id in compare {
        let Some(person) = tx.person(id)? else { continue };
        let Some(found) = resemblance_of(identity, &words, &person.identity) else { continue };
        let same_document = matches!(
            compare_documents(&identity.documents, &person.identity.documents),
            Some(DocumentAgreement::Same(_))
        );
        let (survivor, via) = survivor_of(tx, id)?;
        let mut reasons = found.reasons;
        if let Some(via) = via {
            reasons.push(format!("found through {via}, merged into this record"));
        }
        let entry = best.entry(survivor).or_insert((f64::MIN, Vec::new(), false));
        entry.2 |= same_document;
        if found.score > entry.0 {
            (entry.0, entry.1) = (found.score, reasons);
        }
    }
    let mut listed = Vec::new();
    for (id, (score, reasons, same_document)) in best {
        let Some(person) = tx.person(id)? else { continue };
        let answerable: Vec<String> = tx.person_facilities(id)?.iter().filter_map(|f| codes.get(f).cloned()).collect();
        // Someone never held anywhere belongs to no facility's scope and is shown to all.
        if !answerable.is_empty() && !answerable.iter().any(|f| visible(f)) {
            continue;
        }
        let in_custody = tx.custody_state(id)?.0.status != CustodyStatus::Free;
        listed.push(Candidate {
            name: person.identity.name.full(),
            date_of_birth: person.identity.date_of_birth,
            sex: person.identity.sex,
            nationality: person.identity.nationality.to_string(),
            facilities: answerable.into_iter().filter(|f| visible(f)).collect(),
            number: person.number,
            in_custody,
            same_document,
            score,
            reasons,
        });
    }
    listed.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.number.cmp(&b.number)));
    listed.truncate(limit);
    Ok(listed)
}

fn required(field: &str, text: &str) -> ServiceResult<()> {
    if text.trim().is_empty() {
        return Err(ServiceError::field(field, "is required"));
    }
    Ok(())
}

fn person_id<T: Tx>(tx: &mut T, number: &str) -> ServiceResult<PersonId> {
    tx.person_id(number)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: number.to_string() })
}

fn in_custody<T: Tx>(tx: &mut T, person: PersonId) -> ServiceResult<bool> {
    Ok(tx.custody_state(person)?.0.status != CustodyStatus::Free)
}

/// Merge the record `duplicate` into `request.into`, with the reason. Refused when a person would
/// be merged into themself, into a record already merged away, when the duplicate is already
/// merged, or when both are in custody now (one person cannot be held twice: correct that first).
pub fn merge_in<T: Tx>(tx: &mut T, ctx: &Context, duplicate: &str, request: &MergeRequest) -> ServiceResult<Merged> {
    required("into", &request.into)?;
    required("reason", &request.reason)?;
    let dup = person_id(tx, duplicate)?;
    let into = person_id(tx, &request.into)?;
    if dup == into {
        return Err(ServiceError::refused("identity.self_merge", format!("{duplicate} cannot be merged into itself")));
    }
    if let Some(merge) = tx.merge_in_force(dup)? {
        return Err(ServiceError::refused(
            "identity.already_merged",
            format!("{duplicate} is already merged into {}; un-merge it first", merge.survivor),
        ));
    }
    if let Some(merge) = tx.merge_in_force(into)? {
        return Err(ServiceError::refused(
            "identity.survivor_merged",
            format!("{} was merged into {}; merge into that record instead", request.into, merge.survivor),
        ));
    }
    if in_custody(tx, dup)? && in_custody(tx, into)? {
        return Err(ServiceError::refused(
            "identity.both_in_custody",
            format!(
                "{duplicate} and {} are both in custody now; one person cannot be held twice, so release or correct one record first",
                request.into
            ),
        ));
    }
    let merge = tx.insert_merge(&NewMerge {
        duplicate: dup,
        survivor: into,
        reason: request.reason.trim(),
        recorded_at: ctx.now,
        actor: &ctx.actor,
    })?;
    let payload = serde_json::json!({"duplicate": duplicate, "into": request.into, "reason": request.reason.trim()});
    let audit_seq = audit(tx, ctx, "person.merge", duplicate, &payload)?;
    Ok(Merged { merge, duplicate: duplicate.to_string(), into: request.into.clone(), audit_seq })
}

/// Undo the merge in force of `duplicate`, with the reason; refused when it is not merged.
pub fn unmerge_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    duplicate: &str,
    request: &UnmergeRequest,
) -> ServiceResult<Unmerged> {
    required("reason", &request.reason)?;
    let dup = person_id(tx, duplicate)?;
    let merge = tx.merge_in_force(dup)?.ok_or_else(|| {
        ServiceError::refused("identity.not_merged", format!("{duplicate} is not merged into anyone"))
    })?;
    tx.insert_unmerge(&NewUnmerge {
        merge: merge.id,
        reason: request.reason.trim(),
        recorded_at: ctx.now,
        actor: &ctx.actor,
    })?;
    let payload = serde_json::json!({
        "duplicate": duplicate, "was_merged_into": merge.survivor, "merged_at": rfc3339(merge.recorded_at),
        "reason": request.reason.trim(),
    });
    let audit_seq = audit(tx, ctx, "person.unmerge", duplicate, &payload)?;
    Ok(Unmerged { merge: merge.id, duplicate: duplicate.to_string(), was_merged_into: merge.survivor, audit_seq })
}

/// A person's lineage of merges.
pub fn lineage_in<T: Tx>(tx: &mut T, number: &str) -> ServiceResult<Lineage> {
    let id = person_id(tx, number)?;
    Ok(Lineage {
        number: number.to_string(),
        merged_into: tx.merge_in_force(id)?.map(|m| m.survivor),
        merged_from: tx.merged_into_person(id)?.into_iter().map(|m| m.duplicate).collect(),
        history: tx.merges_of(id)?,
    })
}

fn facility_codes<T: Tx>(tx: &mut T) -> ServiceResult<HashMap<i64, String>> {
    Ok(tx.facilities()?.into_iter().map(|f| (f.id, f.code)).collect())
}

impl<S: Store> Service<S> {
    /// The people on record who may be the person of an intake identity, best first, with score
    /// and reasons; `limit` 1 to 50 (default 10). Nothing is merged or written.
    pub fn identity_candidates(
        &self,
        identity: &Identity,
        limit: Option<u32>,
        visible: impl Fn(&str) -> bool,
    ) -> ServiceResult<Vec<Candidate>> {
        let limit = limit_of(limit)?;
        check_intake(identity)?;
        let mut tx = self.store().read()?;
        let codes = facility_codes(&mut tx)?;
        candidates_in(&mut tx, identity, limit, &codes, &visible)
    }

    /// Candidates for many intake identities at once (a night's intake), in their order: the work
    /// is shared out over the processor's cores, each on its own read snapshot.
    pub fn identity_candidates_batch(
        &self,
        identities: &[Identity],
        limit: Option<u32>,
        visible: impl Fn(&str) -> bool + Sync,
    ) -> ServiceResult<Vec<Vec<Candidate>>> {
        let limit = limit_of(limit)?;
        for (i, identity) in identities.iter().enumerate() {
            check_intake(identity).map_err(|_| {
                ServiceError::field(format!("[{i}].identity"), "give a name or a document number to look for")
            })?;
        }
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8);
        let chunk = identities.len().div_ceil(threads).max(1);
        let visible = &visible;
        std::thread::scope(|scope| {
            let workers: Vec<_> = identities
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || -> ServiceResult<Vec<Vec<Candidate>>> {
                        let mut tx = self.store().read()?;
                        let codes = facility_codes(&mut tx)?;
                        part.iter().map(|identity| candidates_in(&mut tx, identity, limit, &codes, visible)).collect()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(identities.len());
            for worker in workers {
                all.extend(worker.join().map_err(|_| ServiceError::Internal("a candidate search panicked".into()))??);
            }
            Ok(all)
        })
    }

    /// Merge one person's record into another's (see [`merge_in`]).
    pub fn merge_person(&self, ctx: &Context, duplicate: &str, request: &MergeRequest) -> ServiceResult<Merged> {
        self.batch(|tx| merge_in(tx, ctx, duplicate, request))
    }

    /// Undo the merge of a person's record (see [`unmerge_in`]).
    pub fn unmerge_person(&self, ctx: &Context, duplicate: &str, request: &UnmergeRequest) -> ServiceResult<Unmerged> {
        self.batch(|tx| unmerge_in(tx, ctx, duplicate, request))
    }

    /// A person's lineage of merges.
    pub fn person_lineage(&self, number: &str) -> ServiceResult<Lineage> {
        lineage_in(&mut self.store().read()?, number)
    }

    /// The record a person is merged into now, if they are: for the person's record to say so.
    pub fn merged_into(&self, number: &str) -> ServiceResult<Option<String>> {
        let mut tx = self.store().read()?;
        let id = person_id(&mut tx, number)?;
        Ok(tx.merge_in_force(id)?.map(|m| m.survivor))
    }
}
