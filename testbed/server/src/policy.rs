//! Who may open what: the one place that turns keys, assignments, guests and their hosts into
//! grants, and a change of them into revocations. Every write path that touches rights (key
//! edits, assignments, May Share, revoking people, inviting and revoking guests, removing
//! devices) ends in [`rights_changed`], so the rule lives here only.
//!
//! - A person holding keys gets **one grant per key and door**, each with that key's schedule:
//!   two keys for one door never merge into more than either gives (the lock opens when one
//!   grant allows, `door_protocol::evaluate_any`).
//! - A guest's grants are derived, at every instant, from the host's *current* shareable grants
//!   (keys held with May Share) at the invite's doors, cut to the invite's range. Revoking or
//!   unassigning the host, narrowing the key or turning May Share off narrows the guest in the
//!   same transaction; an ended or revoked invite, or a revoked host, gives nothing. Per door
//!   an invite gives in-app access, a doorcode, or both; the doorcode only where the host's
//!   shared key enables doorcodes (checked again at every derivation, not only at the invite).
//! - Revocation is by **floor**: when any document a person still holds (superseded or not)
//!   grants more than their rights now, every document of theirs below the next access
//!   iteration is void (`person_floors`), which Door Sync carries to the locks, one entry per
//!   person whatever their number of devices and credentials. Widening raises nothing, so it
//!   never locks anyone out of an offline door before their phone refreshes.

use std::collections::{BTreeMap, BTreeSet};

use door_protocol::{Id, Schedule};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::access::{blob_id, id_param, stored_schedule, sync_doorcodes};
use crate::error::ApiError;
use crate::schedule_json;

/// One key's right to one door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub door_id: Id,
    /// The key it comes from; for a guest, the host's key.
    pub key_id: Id,
    pub schedule: Schedule,
    pub doorcodes: bool,
    pub may_share: bool,
    /// Opens with the app: the grant goes into access documents. Only a guest's doorcode-only
    /// door has this off (the grant then gives the keypad alone).
    pub app: bool,
}

/// A schedule's canonical text: what "the same grant" compares by.
pub fn schedule_key(s: &Schedule) -> String {
    serde_json::to_string(&schedule_json::to_json(s)).unwrap_or_default()
}

/// `s` cut to `[from, to)`, or `None` if nothing is left.
fn within(s: &Schedule, from: i64, to: i64) -> Option<Schedule> {
    let not_before = s.not_before.map_or(from, |t| t.max(from));
    let not_after = s.not_after.map_or(to, |t| t.min(to));
    (not_before < not_after).then(|| Schedule {
        windows: s.windows.clone(),
        not_before: Some(not_before),
        not_after: Some(not_after),
    })
}

fn revoked(tx: &Transaction<'_>, person: Id) -> Result<bool, ApiError> {
    Ok(tx
        .query_row(
            "SELECT revoked FROM people WHERE id = ?1",
            [id_param(&person)],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(true))
}

/// The grants of the manager keys `person` holds now (none once revoked).
fn key_grants(tx: &Transaction<'_>, person: Id) -> Result<Vec<Grant>, ApiError> {
    if revoked(tx, person)? {
        return Ok(Vec::new());
    }
    let mut stmt = tx.prepare_cached(
        "SELECT kd.door_id, kd.key_id, kd.schedule, kd.doorcodes, a.may_share FROM assignments a \
         JOIN key_doors kd ON kd.key_id = a.key_id JOIN keys k ON k.id = a.key_id \
         WHERE a.person_id = ?1 AND a.revoked_at IS NULL AND k.kind = 'manager'",
    )?;
    let rows = stmt.query_map([id_param(&person)], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, bool>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (door, key, schedule, doorcodes, may_share) = row?;
        out.push(Grant {
            door_id: blob_id(door)?,
            key_id: blob_id(key)?,
            schedule: stored_schedule(&schedule)?,
            doorcodes,
            may_share,
            app: true,
        });
    }
    Ok(out)
}

/// A live invite of a guest: its host, range and doors.
struct Invite {
    inviter: Id,
    starts_at: i64,
    ends_at: i64,
    doors: Vec<InviteDoor>,
}

/// One door of an invite and how the guest opens it.
struct InviteDoor {
    door_id: Id,
    app: bool,
    doorcode: bool,
}

fn invites_of(tx: &Transaction<'_>, guest: Id, now: i64) -> Result<Vec<Invite>, ApiError> {
    let mut stmt = tx.prepare_cached(
        "SELECT i.id, i.inviter_id, i.starts_at, i.ends_at FROM invites i \
         WHERE i.guest_id = ?1 AND i.revoked_at IS NULL AND i.ends_at > ?2",
    )?;
    let rows = stmt
        .query_map(params![id_param(&guest), now], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for (invite, inviter, starts_at, ends_at) in rows {
        let mut doors = tx.prepare_cached(
            "SELECT door_id, app, doorcode FROM invite_keys WHERE invite_id = ?1 AND removed_at IS NULL",
        )?;
        let doors = doors
            .query_map([&invite], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?, r.get(2)?))
            })?
            .map(|row| {
                let (door, app, doorcode) = row?;
                Ok(InviteDoor {
                    door_id: blob_id(door)?,
                    app,
                    doorcode,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        out.push(Invite {
            inviter: blob_id(inviter)?,
            starts_at,
            ends_at,
            doors,
        });
    }
    Ok(out)
}

/// Every grant `person` has at `now`: their keys', and as a guest their hosts' shareable
/// grants at the invited doors within the invites' ranges. Sorted by door, then key.
pub fn grants(tx: &Transaction<'_>, person: Id, now: i64) -> Result<Vec<Grant>, ApiError> {
    let mut out = key_grants(tx, person)?;
    if !revoked(tx, person)? {
        for invite in invites_of(tx, person, now)? {
            for host in key_grants(tx, invite.inviter)? {
                let Some(door) = invite.doors.iter().find(|d| d.door_id == host.door_id) else {
                    continue;
                };
                if !host.may_share {
                    continue;
                }
                if let Some(schedule) = within(&host.schedule, invite.starts_at, invite.ends_at) {
                    out.push(Grant {
                        schedule,
                        doorcodes: door.doorcode && host.doorcodes,
                        may_share: false,
                        app: door.app,
                        ..host
                    });
                }
            }
        }
    }
    out.sort_by_key(|g| (g.door_id, g.key_id));
    out.dedup_by(|a, b| a.door_id == b.door_id && a.key_id == b.key_id);
    Ok(out)
}

/// A credential's grants as stored beside it: (door hex, schedule key) pairs.
pub fn grants_text(grants: &[Grant]) -> String {
    let pairs: Vec<(String, String)> = grants
        .iter()
        .map(|g| (g.door_id.to_string(), schedule_key(&g.schedule)))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_default()
}

/// Whether some document `person` may still present at a lock grants more than `now_grants`:
/// a (door, schedule) pair of a live credential that no current grant has. A credential whose
/// grants were not recorded counts as wider.
fn holds_more(
    tx: &Transaction<'_>,
    person: Id,
    now_grants: &[Grant],
    now: i64,
) -> Result<bool, ApiError> {
    // Documents carry the in-app grants only: a doorcode-only door is in none.
    let have: BTreeSet<(String, String)> = now_grants
        .iter()
        .filter(|g| g.app)
        .map(|g| (g.door_id.to_string(), schedule_key(&g.schedule)))
        .collect();
    let mut stmt = tx
        .prepare_cached("SELECT grants FROM credentials WHERE person_id = ?1 AND not_after > ?2")?;
    let rows = stmt.query_map(params![id_param(&person), now], |r| {
        r.get::<_, Option<String>>(0)
    })?;
    for row in rows {
        let Some(text) = row? else { return Ok(true) };
        let pairs: Vec<(String, String)> = serde_json::from_str(&text)
            .map_err(|e| ApiError::internal(format!("stored grants: {e}")))?;
        if pairs.iter().any(|p| !have.contains(p)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Voids every document `person` holds: the floor goes above their highest access iteration
/// and lasts until the last of those documents expires. A person with no live document needs
/// no floor.
pub fn raise_floor(tx: &Transaction<'_>, person: Id, now: i64) -> Result<(), ApiError> {
    let (max_iteration, last_expiry): (Option<i64>, Option<i64>) = tx.query_row(
        "SELECT MAX(access_iteration), MAX(not_after) FROM credentials WHERE person_id = ?1",
        [id_param(&person)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(max_iteration), Some(last_expiry)) = (max_iteration, last_expiry) else {
        return Ok(());
    };
    if last_expiry <= now {
        return Ok(());
    }
    let property: Vec<u8> = tx.query_row(
        "SELECT property_id FROM people WHERE id = ?1",
        [id_param(&person)],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO person_floors (person_id, property_id, floor, expires_at, raised_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (person_id) DO UPDATE SET floor = MAX(floor, excluded.floor), \
         expires_at = MAX(expires_at, excluded.expires_at), raised_at = excluded.raised_at",
        params![
            id_param(&person),
            property,
            max_iteration + 1,
            last_expiry,
            now
        ],
    )?;
    // Every current credential is below the floor now: the next fetch issues one above it.
    tx.execute(
        "UPDATE credentials SET superseded = 1 WHERE person_id = ?1",
        [id_param(&person)],
    )?;
    Ok(())
}

/// The person's rights may have changed: their doorcodes follow; if any document they may
/// still present grants more than they have now, all their documents are voided by a floor;
/// their current documents are superseded (the next fetch issues new ones); and the guests
/// they invited are re-derived the same way, in the same transaction.
pub fn rights_changed(tx: &Transaction<'_>, person: Id, now: i64) -> Result<(), ApiError> {
    rederive(tx, person, now)?;
    let guests: Vec<Vec<u8>> = {
        let mut stmt = tx.prepare_cached(
            "SELECT DISTINCT guest_id FROM invites WHERE inviter_id = ?1 AND guest_id != ?1",
        )?;
        let rows = stmt.query_map([id_param(&person)], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    // Guests cannot invite, so this goes one level deep.
    for guest in guests {
        rederive(tx, blob_id(guest)?, now)?;
    }
    Ok(())
}

fn rederive(tx: &Transaction<'_>, person: Id, now: i64) -> Result<(), ApiError> {
    let now_grants = grants(tx, person, now)?;
    sync_doorcodes(tx, person, &now_grants, now)?;
    if holds_more(tx, person, &now_grants, now)? {
        raise_floor(tx, person, now)?;
    }
    tx.execute(
        "UPDATE credentials SET superseded = 1 WHERE person_id = ?1",
        [id_param(&person)],
    )?;
    Ok(())
}

/// A person's grants by door, for summaries (my doors, invites).
pub fn by_door(grants: Vec<Grant>) -> BTreeMap<Id, Vec<Grant>> {
    let mut out: BTreeMap<Id, Vec<Grant>> = BTreeMap::new();
    for g in grants {
        out.entry(g.door_id).or_default().push(g);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_cuts_the_range_and_drops_what_is_left_empty() {
        let s = Schedule {
            not_before: Some(100),
            not_after: Some(200),
            ..Schedule::always()
        };
        let cut = within(&s, 150, 300).unwrap();
        assert_eq!((cut.not_before, cut.not_after), (Some(150), Some(200)));
        assert!(within(&s, 200, 300).is_none());
        let open = within(&Schedule::always(), 10, 20).unwrap();
        assert_eq!((open.not_before, open.not_after), (Some(10), Some(20)));
    }
}
