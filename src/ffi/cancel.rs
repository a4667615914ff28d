//! Cancellation the foreign side can trigger. Kotlin coroutines cancel the core's futures
//! through UniFFI, but UniFFI's Swift does not pass Task cancellation on (a cancelled Task's
//! call runs to its end), so the Swift facade makes a `Cancellation`, hands it to the long
//! calls and cancels it from `withTaskCancellationHandler`.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::error::DoorError;
use crate::live::LiveToken;

/// One-shot: once cancelled, every call it was or will be passed to ends at once.
#[derive(uniffi::Object)]
pub struct Cancellation {
    token: CancellationToken,
    _live: LiveToken,
}

#[uniffi::export]
impl Cancellation {
    #[uniffi::constructor]
    pub fn new() -> Arc<Cancellation> {
        Arc::new(Cancellation {
            token: CancellationToken::new(),
            _live: LiveToken::new(),
        })
    }

    /// Ends the calls this was passed to: they return `DoorError::Cancelled` (or, for
    /// `DoorSchedule.wait_for_change`, the current decision).
    pub fn cancel(&self) {
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// Runs `work` until it ends or `cancellation` (if any) is cancelled, whichever is first;
/// `on_cancel` is the result then. A cancellation made before the call is honoured too.
pub(crate) async fn until_cancelled<T>(
    cancellation: Option<Arc<Cancellation>>,
    work: impl Future<Output = T>,
    on_cancel: impl FnOnce() -> T,
) -> T {
    let Some(c) = cancellation else {
        return work.await;
    };
    tokio::select! {
        biased;
        _ = c.token.cancelled() => on_cancel(),
        done = work => done,
    }
}

/// `until_cancelled` for calls that fail with `DoorError::Cancelled`.
pub(crate) async fn cancellable<T>(
    cancellation: Option<Arc<Cancellation>>,
    work: impl Future<Output = Result<T, DoorError>>,
) -> Result<T, DoorError> {
    until_cancelled(cancellation, work, || Err(DoorError::Cancelled)).await
}
