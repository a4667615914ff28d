//! One unlock at a time per client. A second unlock while one runs is refused at once, with
//! the door of the one running, so the app can say so; except that an unlock the person
//! asked for takes the radio from a hands-free one, which is cancelled.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// Who started an unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The person asked (a tap in the app).
    Explicit,
    /// Proximity (hands-free) unlock, when the phone came close to the door.
    Proximity,
}

struct Claim {
    id: u64,
    trigger: Trigger,
    door_id: String,
    cancel: CancellationToken,
}

#[derive(Default)]
struct State {
    claim: Option<Claim>,
    next_id: u64,
}

/// The claim on unlocking, and the radio it runs on: a preempted hands-free unlock keeps the
/// radio until it has noticed and closed its connection, and only then does the explicit one
/// connect.
pub struct UnlockSlot {
    state: Mutex<State>,
    radio: Arc<Semaphore>,
}

impl Default for UnlockSlot {
    fn default() -> UnlockSlot {
        UnlockSlot {
            state: Mutex::new(State::default()),
            radio: Arc::new(Semaphore::new(1)),
        }
    }
}

/// The slot, held until dropped.
pub struct Held<'a> {
    slot: &'a UnlockSlot,
    id: u64,
    cancel: CancellationToken,
    _radio: Option<OwnedSemaphorePermit>,
}

impl UnlockSlot {
    /// Takes the slot for an unlock of `door_id`, or answers with the door whose unlock holds
    /// it. An explicit unlock cancels a hands-free one and waits for it to let go.
    pub async fn claim(&self, trigger: Trigger, door_id: &str) -> Result<Held<'_>, String> {
        let (id, cancel) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(running) = &state.claim {
                if running.trigger == Trigger::Explicit || trigger == Trigger::Proximity {
                    return Err(running.door_id.clone());
                }
                running.cancel.cancel();
            }
            state.next_id += 1;
            let (id, cancel) = (state.next_id, CancellationToken::new());
            state.claim = Some(Claim {
                id,
                trigger,
                door_id: door_id.to_owned(),
                cancel: cancel.clone(),
            });
            (id, cancel)
        };
        // Held before waiting, so a caller dropped while it waits still gives the claim back.
        let mut held = Held {
            slot: self,
            id,
            cancel,
            _radio: None,
        };
        held._radio = Some(
            self.radio
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed"),
        );
        Ok(held)
    }
}

impl Held<'_> {
    /// Resolves when an explicit unlock takes over.
    pub fn preempted(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut state = self
            .slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A preempted unlock ends after its successor claimed: leave the successor's claim.
        if state.claim.as_ref().is_some_and(|c| c.id == self.id) {
            state.claim = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_unlock_is_refused_with_the_running_door() {
        let slot = UnlockSlot::default();
        let held = slot.claim(Trigger::Explicit, "lobby").await.unwrap();
        assert_eq!(
            slot.claim(Trigger::Explicit, "garage")
                .await
                .err()
                .as_deref(),
            Some("lobby")
        );
        assert_eq!(
            slot.claim(Trigger::Proximity, "garage")
                .await
                .err()
                .as_deref(),
            Some("lobby")
        );
        drop(held);
        assert!(slot.claim(Trigger::Explicit, "garage").await.is_ok());
    }

    #[tokio::test]
    async fn an_explicit_unlock_preempts_a_hands_free_one_and_waits_for_the_radio() {
        let slot = Arc::new(UnlockSlot::default());
        let hands_free = slot.claim(Trigger::Proximity, "lobby").await.unwrap();
        let explicit = {
            let slot = slot.clone();
            tokio::spawn(async move {
                let _held = slot.claim(Trigger::Explicit, "garage").await.unwrap();
            })
        };
        tokio::time::timeout(Duration::from_secs(5), hands_free.preempted())
            .await
            .expect("the hands-free unlock is told to stop");
        // Another explicit one is refused while the first waits for the radio.
        tokio::task::yield_now().await;
        assert_eq!(
            slot.claim(Trigger::Explicit, "bike room")
                .await
                .err()
                .as_deref(),
            Some("garage")
        );
        assert!(!explicit.is_finished(), "it waits until the radio is free");
        drop(hands_free);
        explicit.await.unwrap();
        assert!(slot.claim(Trigger::Proximity, "lobby").await.is_ok());
    }

    #[tokio::test]
    async fn a_caller_dropped_while_waiting_gives_the_claim_back() {
        let slot = UnlockSlot::default();
        let hands_free = slot.claim(Trigger::Proximity, "lobby").await.unwrap();
        let waiting = tokio::time::timeout(
            Duration::from_millis(50),
            slot.claim(Trigger::Explicit, "x"),
        )
        .await;
        assert!(waiting.is_err(), "still waiting for the radio");
        drop(hands_free);
        assert!(slot.claim(Trigger::Explicit, "garage").await.is_ok());
    }
}
