//! Lock health (door_protocol::health): each lock's signed health records arrive with its audit
//! records, so whichever phone pulled them relays them; the server keeps the newest per lock
//! (by the lock's signed time) and shows managers every lock with its battery, firmware, clock
//! and how far its sync iteration lags the server's.

use axum::extract::State;
use axum::Json;
use door_protocol::{AuditEpoch, Id, LockHealth};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{blob_id, id_param};
use crate::auth::Manager;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Path;
use crate::AppState;

/// A health record the upload stored: its name in the lock's log, signed time and contents.
pub struct Reported {
    pub epoch: AuditEpoch,
    pub seq: i64,
    pub at: i64,
    pub health: LockHealth,
}

/// Keeps `reported` as `lock`'s health unless the server holds a newer one: later by the
/// lock's signed time, or at the same time later in the same log. Records arrive in any
/// order (phones upload late), so arrival order decides nothing.
pub fn keep(tx: &Transaction<'_>, lock: Id, reported: &Reported, now: i64) -> ApiResult<()> {
    let h = &reported.health;
    tx.execute(
        "INSERT INTO lock_health \
         (lock_id, epoch, seq, at, battery, firmware, clock_offset, iteration, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (lock_id) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, \
           at = excluded.at, battery = excluded.battery, firmware = excluded.firmware, \
           clock_offset = excluded.clock_offset, iteration = excluded.iteration, \
           received_at = excluded.received_at \
         WHERE excluded.at > lock_health.at \
           OR (excluded.at = lock_health.at AND excluded.epoch = lock_health.epoch \
               AND excluded.seq > lock_health.seq)",
        params![
            id_param(&lock),
            &reported.epoch.0[..],
            reported.seq,
            reported.at,
            h.battery_percent,
            h.firmware.as_str(),
            h.clock_offset,
            // Iterations are counted by the server from 1, far below i64::MAX.
            i64::try_from(h.iteration).unwrap_or(i64::MAX),
            now,
        ],
    )?;
    Ok(())
}

/// One door's lock and what it last said of itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LockHealthJson {
    pub door_id: String,
    pub door_name: String,
    pub lock_id: String,
    /// The sync iteration the server holds for this lock now (recorded first if the door's
    /// access changed since the last one): what the next bundle brings it.
    pub latest_iteration: u64,
    /// When a phone last brought this lock's records in (server time); null: never.
    pub last_upload_at: Option<i64>,
    /// The newest health the lock reported; null until a phone relays one.
    pub health: Option<ReportedHealthJson>,
}

/// A lock's health record, as it signed it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ReportedHealthJson {
    /// The lock's clock when it reported (signed).
    pub reported_at: i64,
    /// Battery charge left, 0 to 100.
    pub battery_percent: u8,
    pub firmware: String,
    /// Seconds the lock's clock read ahead of the last signed time it took, as it took it
    /// (negative: behind); null: it has taken none since it was installed or wiped.
    pub clock_offset: Option<i64>,
    /// The sync iteration the lock had applied.
    pub applied_iteration: u64,
    /// Whether that iteration holds every access change of `latest_iteration` (the audit
    /// acknowledgement aside, which every upload moves): false means the lock lacks access
    /// the server has, and a phone that syncs it will bring it.
    pub up_to_date: bool,
}

/// The property's locks with their health, by door name. Reading the latest iteration records
/// it, as a bundle request would, so that access changed a moment ago already shows as missing.
#[utoipa::path(get, path = "/v1/properties/{property_id}/locks", tag = "manager",
    params(("property_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = Vec<LockHealthJson>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
) -> ApiResult<Json<Vec<LockHealthJson>>> {
    let property = manager.check(&pid)?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        let mut stmt = tx.prepare(
            "SELECT id, name, lock_id FROM doors WHERE property_id = ?1 ORDER BY name, id",
        )?;
        let doors = stmt
            .query_map([id_param(&property)], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        doors
            .into_iter()
            .map(|(door, door_name, lock)| {
                let (door, lock) = (blob_id(door)?, blob_id(lock)?);
                let latest_iteration =
                    crate::sync::latest_iteration(tx, property, door, lock, now)?;
                Ok(LockHealthJson {
                    door_id: door.to_string(),
                    door_name,
                    lock_id: lock.to_string(),
                    latest_iteration,
                    last_upload_at: tx.query_row(
                        "SELECT MAX(received_at) FROM audit_records WHERE lock_id = ?1",
                        [id_param(&lock)],
                        |r| r.get(0),
                    )?,
                    health: reported(tx, lock, latest_iteration)?,
                })
            })
            .collect::<ApiResult<Vec<_>>>()
    })?))
}

fn reported(tx: &Transaction<'_>, lock: Id, latest: u64) -> ApiResult<Option<ReportedHealthJson>> {
    let row: Option<(i64, i64, String, Option<i64>, i64)> = tx
        .query_row(
            "SELECT at, battery, firmware, clock_offset, iteration FROM lock_health \
             WHERE lock_id = ?1",
            [id_param(&lock)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    row.map(|(at, battery, firmware, clock_offset, iteration)| {
        let stored = || ApiError::internal("stored lock health");
        let applied_iteration = u64::try_from(iteration).map_err(|_| stored())?;
        let up_to_date = crate::sync::has_latest_access(tx, lock, applied_iteration, latest)?;
        Ok(ReportedHealthJson {
            reported_at: at,
            battery_percent: u8::try_from(battery).map_err(|_| stored())?,
            firmware,
            clock_offset,
            applied_iteration,
            up_to_date,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use door_protocol::FirmwareVersion;
    use proptest::prelude::*;

    fn stored_at(db: &Db, lock: Id) -> Option<(i64, i64, u8)> {
        db.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT at, seq, battery FROM lock_health WHERE lock_id = ?1",
                    [id_param(&lock)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?)
        })
        .unwrap()
    }

    proptest! {
        /// Whatever order a lock's health records arrive in, the server keeps the one it
        /// signed last: the latest signed time, then the latest seq of the log.
        #[test]
        fn the_newest_health_wins_in_any_arrival_order(
            // (at, seq, battery): seqs in the order the log wrote them, arriving shuffled.
            mut named in proptest::collection::vec((0i64..20, 0u8..=100), 1..12)
                .prop_flat_map(|written| {
                    let named: Vec<(i64, i64, u8)> = written
                        .into_iter()
                        .enumerate()
                        .map(|(seq, (at, battery))| (at, seq as i64, battery))
                        .collect();
                    Just(named).prop_shuffle()
                }),
        ) {
            let db = Db::open(None).unwrap();
            let lock = Id([1; 16]);
            for &(at, seq, battery) in &named {
                let reported = Reported {
                    epoch: AuditEpoch([3; 8]),
                    seq,
                    at,
                    health: LockHealth {
                        battery_percent: battery,
                        firmware: FirmwareVersion::new("v1").unwrap(),
                        clock_offset: None,
                        iteration: 0,
                    },
                };
                db.write(|tx| keep(tx, lock, &reported, 0)).unwrap();
            }
            named.sort();
            prop_assert_eq!(stored_at(&db, lock), named.last().copied());
        }
    }
}
