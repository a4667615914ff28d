//! Proximity (hands-free) unlock: the core scans, feeds the readings to `proximity`'s
//! decisions, and opens the door it names through the same unlock path as a tap, reported
//! through the same events. Only doors whose cached decision says "open now" are candidates,
//! so an Out of Schedule door is never contacted.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use door_protocol::Decision;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ble::{BleError, Sighting};
use crate::client::{Background, Core, Event};
use crate::error::{CoreError, CoreResult};
use crate::proximity::{Proximity, ProximityConfig};
use crate::unlock_slot::Trigger;

/// A hands-free unlock gets as long as a tap does.
const UNLOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the readings are aged when no advertisement arrives (the phone walked away).
const TICK: Duration = Duration::from_millis(250);

impl Core {
    /// Starts proximity unlock (or restarts it with new settings) for `only` these doors
    /// (empty: every door). Fails at once when the radio cannot scan: Bluetooth off,
    /// permission missing, or an app's own transport.
    pub async fn start_proximity_unlock(
        self: &Arc<Self>,
        config: ProximityConfig,
        only: Vec<String>,
    ) -> CoreResult<()> {
        config
            .check()
            .map_err(|(field, reason)| CoreError::invalid(field, reason))?;
        for (i, door) in only.iter().enumerate() {
            if self.door(door).is_err() {
                return Err(CoreError::invalid(
                    format!("door_ids[{i}]"),
                    "is not one of your doors",
                ));
            }
        }
        let transport = self
            .transport()
            .ok_or(CoreError::Ble(BleError::Unavailable))?;
        self.stop_proximity_unlock().await;
        let (sightings, readings) = mpsc::channel(256);
        let stop = CancellationToken::new();
        transport.scan(sightings, stop.child_token()).await?;
        // Weak: the scan must not keep a client the app has let go of alive.
        let only_count = only.len();
        let task = tokio::spawn(run(
            Arc::downgrade(self),
            Proximity::new(config),
            only,
            readings,
            stop.clone(),
        ));
        *self
            .hands_free
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Background { stop, task });
        tracing::info!(
            unlock_rssi = config.unlock_rssi,
            away_rssi = config.away_rssi,
            doors = only_count,
            "proximity unlock started"
        );
        Ok(())
    }

    /// Stops proximity unlock, and a hands-free unlock under way (reported `Cancelled`).
    pub async fn stop_proximity_unlock(&self) {
        let running = self
            .hands_free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut running) = running {
            running.stop.cancel();
            let _ = (&mut running.task).await;
            tracing::info!("proximity unlock stopped");
        }
    }

    pub fn is_proximity_unlock_on(&self) -> bool {
        self.hands_free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|h| !h.task.is_finished())
    }

    /// The doors (of `only`, unless empty) that open to this person now, by their lock.
    fn open_now_by_lock(&self, only: &[String]) -> HashMap<String, String> {
        self.doors()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| only.is_empty() || only.contains(&v.door.id))
            .filter(|v| matches!(v.decision, Decision::Allowed { .. }))
            .map(|v| (v.door.lock_id, v.door.id))
            .collect()
    }
}

async fn run(
    core: Weak<Core>,
    mut proximity: Proximity,
    only: Vec<String>,
    mut readings: mpsc::Receiver<Result<Sighting, BleError>>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            reading = readings.recv() => match reading {
                Some(Ok(seen)) => proximity.seen(&seen.lock_id, seen.rssi, Instant::now()),
                ended => {
                    if let Some(core) = core.upgrade() {
                        let error = match ended {
                            Some(Err(e)) => e,
                            _ => BleError::Unavailable,
                        };
                        tracing::warn!(error = %error, "proximity unlock stopped by the radio");
                        core.emit(Event::ProximityStopped { error: error.into() });
                    }
                    return;
                }
            },
            _ = tick.tick() => proximity.expire(Instant::now()),
        }
        // Reading the cache only when some lock is close enough keeps the loop cheap.
        if proximity.due(Instant::now(), |_| true).is_none() {
            continue;
        }
        let Some(strong) = core.upgrade() else { return };
        let doors = strong.open_now_by_lock(&only);
        let Some(lock_id) = proximity.due(Instant::now(), |lock| doors.contains_key(lock)) else {
            continue;
        };
        let door_id = &doors[&lock_id];
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            result = strong.unlock_as(door_id, UNLOCK_TIMEOUT, Trigger::Proximity) => result,
        };
        match result {
            // Opened, or the lock or the cache said no: not again on this approach.
            Ok(_)
            | Err(CoreError::Denied(_))
            | Err(CoreError::OutOfSchedule { .. })
            | Err(CoreError::NotGenuine) => proximity.settled(&lock_id, Instant::now()),
            // The radio, a busy slot, a preemption: the door stays armed and is tried again.
            Err(_) => proximity.failed(&lock_id, Instant::now()),
        }
    }
}
