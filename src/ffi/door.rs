//! A door as the app sees it: the cached door with its decision now and its Door Sync state.

use std::time::SystemTime;

use super::schedule::{AccessDecision, KeySchedule, ScheduleWindow, Weekday};
use super::time::from_unix;
use super::DoorError;
use crate::client::{Core, DoorView};

/// A door the person may open. Never carries a key name.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Door {
    pub id: String,
    pub name: String,
    /// Online doors talk to the server themselves; offline ones rely on Door Sync.
    pub online: bool,
    pub keypad: bool,
    /// Whether the door opens to this person now, and until or from when.
    pub access: AccessDecision,
    /// When `access` changes next (refresh the UI then); absent when it never does.
    pub next_change: Option<SystemTime>,
    /// One Key Schedule per key that gives this door (never a key name): the door opens
    /// whenever one of them allows.
    pub schedules: Vec<KeySchedule>,
    pub has_doorcode: bool,
    /// May this person invite guests to this door?
    pub may_share: bool,
    /// The phone carries Door Sync data for this door's lock (it goes along with the next
    /// unlock, or with `sync_door`).
    pub sync_pending: bool,
}

/// The app's doors from the core's views, with whether the phone carries sync data for each.
pub(crate) fn doors_of(core: &Core, views: Vec<DoorView>) -> Result<Vec<Door>, DoorError> {
    let pending = core.locks_with_pending_sync()?;
    Ok(views
        .into_iter()
        .map(|v| {
            let p = pending.contains(&v.door.lock_id);
            Door::new(v, p)
        })
        .collect())
}

fn key_schedule(schedule: &door_protocol::Schedule) -> KeySchedule {
    KeySchedule {
        windows: schedule
            .windows
            .iter()
            .map(|w| ScheduleWindow {
                days: Weekday::ALL
                    .iter()
                    .copied()
                    .filter(|d| w.days.contains(*d as u8))
                    .collect(),
                start_minute: w.start_minute,
                end_minute: w.end_minute,
            })
            .collect(),
        not_before: schedule.not_before.map(from_unix),
        not_after: schedule.not_after.map(from_unix),
    }
}

impl Door {
    pub(crate) fn new(v: DoorView, sync_pending: bool) -> Door {
        Door {
            next_change: v.decision.next_change().map(from_unix),
            access: v.decision.into(),
            schedules: v.door.schedules().iter().map(key_schedule).collect(),
            id: v.door.id,
            name: v.door.name,
            online: v.door.online,
            keypad: v.door.keypad,
            has_doorcode: v.door.doorcode.is_some(),
            may_share: v.door.may_share,
            sync_pending,
        }
    }
}
