//! The access log of one door as a person sees it (OpenDOOR `getAccessLogs`): the lock-signed
//! audit records the server holds for the door's lock, newest first, narrowed to what this
//! person may see.
//!
//! What an entry is: an unlock over BLE (granted or denied) and a code typed on the keypad
//! (granted or denied), and a lock's word that its log was full and records were lost
//! (`records_lost`: the log has a hole there). A sync bundle applied and a clock set are the
//! lock's upkeep, not anyone's entry: never shown.
//!
//! Who sees what (the security property): at a door of their own unit (units.rs) a person sees
//! every entry, with the names of those who came in; at any other door they have or had access
//! to, only the entries that name them. An entry that names no one this server knows (a wrong
//! code, a refusal before the lock trusted the document, a credential of no person) and
//! `records_lost` show only at own-unit doors. A guest belongs to no unit. A door the person
//! never had (and that is not of their unit) is "not found", as is a door of another property.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use door_protocol::unlock::DenyReason;
use door_protocol::{AuditEpoch, AuditEvent, AuditRecord, Id};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::{blob_id, id_param};
use crate::auth::Person;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{id, Path, Query};
use crate::{policy, AppState};

/// Entries per page unless asked otherwise, and the most a page may hold.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessLogQuery {
    /// Entries in the page, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "crate::extract::query_integer_opt")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// A page's `next`: the entries older than the last one of that page. Absent: the newest.
    #[param(pattern = "^-?[0-9]{1,18}:[0-9a-f]{16}:[0-9]{1,18}$")]
    pub before: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AccessOutcome {
    Granted,
    Denied,
    /// The lock's log was full and it dropped `lost` records the server never received.
    RecordsLost,
}

/// How: a phone over Bluetooth, or a code on the keypad.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AccessMethod {
    Ble,
    Doorcode,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// The lock's signed clock when it happened (Unix seconds).
    pub at: i64,
    pub outcome: AccessOutcome,
    /// Absent for `records_lost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<AccessMethod>,
    /// Who, when the record names a person of the property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_name: Option<String>,
    /// For `denied`: out_of_schedule, revoked, expired, not_yet_valid, wrong_door,
    /// bad_credential, clock_untrusted, replayed, busy (BLE); doorcode_not_valid (the
    /// person's own code, expired or outside its schedule: the record does not say which),
    /// unknown_doorcode (no code matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_reason: Option<String>,
    /// For `records_lost`: how many records the lock dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// This entry's place in the log: as `before`, the entries older than it.
    pub cursor: String,
}

/// One page of a door's access log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AccessLogPage {
    pub entries: Vec<AccessLogEntry>,
    /// The `before` of the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Whom a record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// An access document's credential: its person is the server's to look up.
    Credential(Id),
    /// A doorcode's holder.
    Person(Id),
    Nobody,
}

/// A record as an access-log entry, before its subject is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub outcome: AccessOutcome,
    pub method: Option<AccessMethod>,
    pub subject: Subject,
    pub deny_reason: Option<&'static str>,
    pub lost: Option<u64>,
}

/// The entry a record makes, or `None` for the lock's upkeep (sync applied, clock set, its
/// health report: the manager's lock list shows that).
pub fn describe(event: &AuditEvent) -> Option<Described> {
    let entry = |outcome, method, subject, deny_reason| Described {
        outcome,
        method: Some(method),
        subject,
        deny_reason,
        lost: None,
    };
    Some(match *event {
        AuditEvent::UnlockGranted { credential_id, .. } => entry(
            AccessOutcome::Granted,
            AccessMethod::Ble,
            Subject::Credential(credential_id),
            None,
        ),
        AuditEvent::UnlockDenied {
            credential_id,
            reason,
        } => entry(
            AccessOutcome::Denied,
            AccessMethod::Ble,
            credential_id.map_or(Subject::Nobody, Subject::Credential),
            Some(deny_code(reason)),
        ),
        AuditEvent::DoorcodeEntry { person_id, granted } => {
            let subject = person_id.map_or(Subject::Nobody, Subject::Person);
            match (granted, person_id) {
                (true, _) => entry(
                    AccessOutcome::Granted,
                    AccessMethod::Doorcode,
                    subject,
                    None,
                ),
                // The holder's code, refused: expired or outside its schedule; the lock
                // records the two alike.
                (false, Some(_)) => entry(
                    AccessOutcome::Denied,
                    AccessMethod::Doorcode,
                    subject,
                    Some("doorcode_not_valid"),
                ),
                (false, None) => entry(
                    AccessOutcome::Denied,
                    AccessMethod::Doorcode,
                    subject,
                    Some("unknown_doorcode"),
                ),
            }
        }
        AuditEvent::RecordsDropped { count, .. } => Described {
            outcome: AccessOutcome::RecordsLost,
            method: None,
            subject: Subject::Nobody,
            deny_reason: None,
            lost: Some(count),
        },
        AuditEvent::SyncApplied { .. } | AuditEvent::ClockSet { .. } | AuditEvent::Health(_) => {
            return None
        }
    })
}

fn deny_code(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::OutOfSchedule { .. } => "out_of_schedule",
        DenyReason::Revoked => "revoked",
        DenyReason::Expired => "expired",
        DenyReason::NotYetValid => "not_yet_valid",
        DenyReason::WrongDoor => "wrong_door",
        DenyReason::BadCredential => "bad_credential",
        DenyReason::ClockUntrusted => "clock_untrusted",
        DenyReason::Replayed => "replayed",
        DenyReason::Busy => "busy",
    }
}

/// The rule itself: at an own-unit door everything; elsewhere only what names the viewer.
pub fn visible(own_unit: bool, viewer: Id, who: Option<Id>) -> bool {
    own_unit || who == Some(viewer)
}

/// Whether `door` is of the unit the person lives in. A guest lives in no unit.
pub fn own_unit(person_unit: Option<&str>, role: &str, door_unit: Option<&str>) -> bool {
    role != "guest" && person_unit.is_some() && person_unit == door_unit
}

/// A place in a lock's log: entries are ordered by the lock's signed time, then epoch, then
/// sequence, which is unique per lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub epoch: AuditEpoch,
    pub seq: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.at, self.epoch, self.seq)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let mut parts = s.split(':');
        let at = parts.next()?.parse().ok()?;
        let epoch = AuditEpoch::from_hex(parts.next()?)?;
        let seq: i64 = parts.next()?.parse().ok()?;
        (parts.next().is_none() && seq >= 0).then_some(Cursor { at, epoch, seq })
    }
}

/// A door's access log, newest first, from `before`.
#[utoipa::path(get, path = "/v1/me/doors/{door_id}/access-log", tag = "resident",
    params(("door_id" = String, Path), AccessLogQuery), security(("person" = [])),
    responses((status = 200, body = AccessLogPage),
        (status = 404, description = "`not_found`: a door this person never had access to (and not of their unit), or of another property", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn access_log(
    State(state): State<AppState>,
    person: Person,
    Path(door): Path<String>,
    Query(q): Query<AccessLogQuery>,
) -> ApiResult<Json<AccessLogPage>> {
    let door = id("door_id", &door)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {MAX_LIMIT}"),
        ));
    }
    let before = q
        .before
        .as_deref()
        .map(|b| {
            Cursor::parse(b)
                .ok_or_else(|| ApiError::invalid("before", "is not a cursor of this log"))
        })
        .transpose()?;
    let now = state.now();
    Ok(Json(state.db.read(|tx| {
        let (lock, own_unit) = door_for(tx, &person, door, now)?;
        page(tx, &person, lock, own_unit, before, limit as usize)
    })?))
}

/// The door's lock, and whether the door is of the person's unit; "not found" unless it is,
/// or the person has or had access to it.
fn door_for(tx: &Transaction<'_>, person: &Person, door: Id, now: i64) -> ApiResult<(Id, bool)> {
    let not_found = || ApiError::not_found_at("door_id", "door");
    let row: Option<(Vec<u8>, Option<String>)> = tx
        .query_row(
            "SELECT lock_id, unit FROM doors WHERE id = ?1 AND property_id = ?2",
            params![id_param(&door), id_param(&person.property_id)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (lock, door_unit) = row.ok_or_else(not_found)?;
    let person_unit: Option<String> = tx.query_row(
        "SELECT unit FROM people WHERE id = ?1",
        [id_param(&person.id)],
        |r| r.get(0),
    )?;
    let own = own_unit(person_unit.as_deref(), &person.role, door_unit.as_deref());
    // Had: the server issued them a document for it (documents are kept), or they hold a
    // doorcode for it; has: a grant now.
    let had: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM credential_documents cd JOIN credentials c ON c.id = cd.credential_id \
           WHERE c.person_id = ?1 AND cd.door_id = ?2) \
         OR EXISTS(SELECT 1 FROM doorcodes WHERE person_id = ?1 AND door_id = ?2)",
        params![id_param(&person.id), id_param(&door)],
        |r| r.get(0),
    )?;
    if !(own
        || had
        || policy::grants(tx, person.id, now)?
            .iter()
            .any(|g| g.door_id == door))
    {
        return Err(not_found());
    }
    Ok((blob_id(lock)?, own))
}

/// Up to `limit` visible entries of `lock`'s log older than `before`, and where the next page
/// starts if there is one.
fn page(
    tx: &Transaction<'_>,
    person: &Person,
    lock: Id,
    own_unit: bool,
    before: Option<Cursor>,
    limit: usize,
) -> ApiResult<AccessLogPage> {
    let mut people = People::new(tx, person.property_id);
    let (sql, cursor) = match before {
        Some(c) => (
            "SELECT epoch, seq, at, record FROM audit_records WHERE lock_id = ?1 \
             AND (at, epoch, seq) < (?2, ?3, ?4) ORDER BY at DESC, epoch DESC, seq DESC",
            Some(c),
        ),
        None => (
            "SELECT epoch, seq, at, record FROM audit_records WHERE lock_id = ?1 \
             ORDER BY at DESC, epoch DESC, seq DESC",
            None,
        ),
    };
    let mut stmt = tx.prepare_cached(sql)?;
    let mut rows = match cursor {
        Some(c) => stmt.query(params![id_param(&lock), c.at, &c.epoch.0[..], c.seq])?,
        None => stmt.query([id_param(&lock)])?,
    };
    let mut entries = Vec::new();
    // One past the page tells whether there is a next one.
    while entries.len() <= limit {
        let Some(row) = rows.next()? else { break };
        let (epoch, seq, at, bytes): (Vec<u8>, i64, i64, Vec<u8>) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        // Only records whose signature verified under this lock's key are ever stored
        // (audit.rs): reading them again need not check it again.
        let record = AuditRecord::read_own(&bytes)
            .map_err(|e| ApiError::internal(format!("stored audit record: {e:?}")))?;
        let Some(described) = describe(&record.event) else {
            continue;
        };
        let who = people.of(described.subject)?;
        if !visible(own_unit, person.id, who.as_ref().map(|(id, _)| *id)) {
            continue;
        }
        let epoch = <[u8; 8]>::try_from(epoch.as_slice())
            .map(AuditEpoch)
            .map_err(|_| ApiError::internal("stored audit epoch"))?;
        entries.push(AccessLogEntry {
            at,
            outcome: described.outcome,
            method: described.method,
            person_id: who.as_ref().map(|(id, _)| id.to_string()),
            person_name: who.map(|(_, name)| name),
            deny_reason: described.deny_reason.map(Into::into),
            lost: described.lost,
            cursor: Cursor { at, epoch, seq }.encode(),
        });
    }
    let next = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| e.cursor.clone())
    } else {
        None
    };
    Ok(AccessLogPage { entries, next })
}

/// The people records name, looked up once per page.
struct People<'a, 'tx> {
    tx: &'a Transaction<'tx>,
    property: Id,
    credentials: HashMap<Id, Option<Id>>,
    names: HashMap<Id, Option<String>>,
}

impl<'a, 'tx> People<'a, 'tx> {
    fn new(tx: &'a Transaction<'tx>, property: Id) -> Self {
        People {
            tx,
            property,
            credentials: HashMap::new(),
            names: HashMap::new(),
        }
    }

    /// The person of the property `subject` names, with their name; `None` for no one, or for
    /// anyone the property does not know.
    fn of(&mut self, subject: Subject) -> ApiResult<Option<(Id, String)>> {
        let person = match subject {
            Subject::Nobody => return Ok(None),
            Subject::Person(p) => p,
            Subject::Credential(c) => {
                let person = match self.credentials.get(&c) {
                    Some(p) => *p,
                    None => {
                        let p: Option<Vec<u8>> = self
                            .tx
                            .query_row(
                                "SELECT person_id FROM credentials WHERE id = ?1",
                                [id_param(&c)],
                                |r| r.get(0),
                            )
                            .optional()?;
                        let p = p.map(blob_id).transpose()?;
                        self.credentials.insert(c, p);
                        p
                    }
                };
                let Some(person) = person else {
                    return Ok(None);
                };
                person
            }
        };
        let name = match self.names.get(&person) {
            Some(n) => n.clone(),
            None => {
                let n: Option<String> = self
                    .tx
                    .query_row(
                        "SELECT name FROM people WHERE id = ?1 AND property_id = ?2",
                        params![id_param(&person), id_param(&self.property)],
                        |r| r.get(0),
                    )
                    .optional()?;
                self.names.insert(person, n.clone());
                n
            }
        };
        Ok(name.map(|n| (person, n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_refuse_anything_else() {
        let c = Cursor {
            at: -5,
            epoch: AuditEpoch([1, 2, 3, 4, 5, 6, 7, 0xff]),
            seq: 9,
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            "1:2",
            "x:0102030405060708:1",
            "1:0102030405060708:-1",
            "1:01:1",
            "1:0102030405060708:1:2",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_guest_has_no_unit_and_no_unit_is_no_one_elses() {
        assert!(own_unit(Some("101"), "resident", Some("101")));
        assert!(!own_unit(Some("101"), "guest", Some("101")));
        assert!(!own_unit(None, "resident", None));
        assert!(!own_unit(Some("101"), "resident", None));
        assert!(!own_unit(Some("101"), "resident", Some("102")));
    }

    #[test]
    fn upkeep_is_no_entry_and_wrong_codes_name_no_one() {
        assert_eq!(describe(&AuditEvent::SyncApplied { iteration: 3 }), None);
        assert_eq!(describe(&AuditEvent::ClockSet { step: -4 }), None);
        let health = door_protocol::LockHealth {
            battery_percent: 50,
            firmware: door_protocol::FirmwareVersion::new("v1").unwrap(),
            clock_offset: None,
            iteration: 1,
        };
        assert_eq!(describe(&AuditEvent::Health(health)), None);
        let wrong = describe(&AuditEvent::DoorcodeEntry {
            person_id: None,
            granted: false,
        })
        .unwrap();
        assert_eq!(
            (wrong.subject, wrong.deny_reason),
            (Subject::Nobody, Some("unknown_doorcode"))
        );
    }
}
