//! Door Sync from the phone's side: bundles fetched while online, carried to offline locks
//! after an unlock (never before its answer) or on demand, audit records brought home into a
//! durable outbox and uploaded with retries. The phone is an untrusted courier: bundles are
//! signed and their doorcodes sealed to the lock; audit records are signed by the lock.

use std::time::Duration;

use base64::Engine;
use door_protocol::sync::{AuditPuller, FailReason, SyncEvent, SyncOutcome, SyncTransfer};
use door_protocol::{AuditEpoch, LockPublicKey};
use reqwest::Method;
use tokio::time::Instant;

use crate::api::wire::{AuditReceipt, AuditUpload, SignedTimeJson, SyncBundleJson};
use crate::ble::{BleError, Connection};
use crate::error::{CoreError, CoreResult};
use crate::store::{OutboxRecord, Store, UploadOutcome};

/// How long a sync may keep the link after an unlock; a cut transfer resumes next time.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

fn b64e(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn b64d(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// What a sync did at a lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The lock's sync iteration afterwards, when the lock said.
    pub lock_iteration: Option<u64>,
    /// A bundle was applied.
    pub applied: bool,
    /// Audit records brought into the outbox.
    pub audit_records: u32,
}

/// The path of a bundle request: a delta from what the lock held when last seen, else full.
pub fn bundle_path(store: &Store, lock_id: &str) -> CoreResult<String> {
    let (seen, needs_full) = store.lock_seen(lock_id)?;
    let since = if needs_full { 0 } else { seen.unwrap_or(0) };
    Ok(format!("/v1/locks/{lock_id}/bundle?since={since}"))
}

/// Keeps a fetched bundle when it is newer than what the phone carries.
pub fn keep_bundle(store: &Store, answer: &SyncBundleJson) -> CoreResult<()> {
    let lock = crate::diagnostics::short(&answer.lock_id);
    if answer.up_to_date {
        tracing::debug!(lock, "bundle up to date");
        return Ok(());
    }
    let bytes = answer.bundle.as_deref().and_then(b64d).ok_or_else(|| {
        CoreError::Api(crate::api::ApiError::Malformed(
            "bundle is not base64".into(),
        ))
    })?;
    // Sizes and iterations only: the bundle holds sealed doorcodes and credentials.
    tracing::debug!(
        lock,
        iteration = answer.iteration,
        base = answer.base_iteration,
        bytes = bytes.len(),
        "bundle fetched"
    );
    store.set_bundle(
        &answer.lock_id,
        answer.iteration,
        answer.base_iteration,
        &bytes,
    )?;
    Ok(())
}

pub fn keep_signed_time(store: &Store, answer: &SignedTimeJson) -> CoreResult<()> {
    Ok(store.set_meta("signed_time", Some(&answer.signed_time))?)
}

/// The COSE bytes of a signed time the server sent.
pub fn signed_time_bytes(answer: &SignedTimeJson) -> Option<Vec<u8>> {
    b64d(&answer.signed_time)
}

pub fn signed_time(store: &Store) -> CoreResult<Option<Vec<u8>>> {
    Ok(store.meta("signed_time")?.and_then(|s| b64d(&s)))
}

async fn within<T>(
    deadline: Instant,
    step: impl std::future::Future<Output = Result<T, BleError>>,
) -> CoreResult<T> {
    match tokio::time::timeout_at(deadline, step).await {
        Ok(r) => r.map_err(CoreError::Ble),
        Err(_) => Err(CoreError::Ble(BleError::Timeout)),
    }
}

/// Carries the phone's bundle for this lock, if the lock needs it, over an open connection.
/// `lock_iteration` is what the lock reported in its unlock answer, when there was one.
pub async fn transfer_bundle(
    store: &Store,
    connection: &mut dyn Connection,
    lock_id: &str,
    lock_iteration: Option<u64>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
    deadline: Instant,
) -> CoreResult<Option<u64>> {
    let Some(crate::store::CarriedBundle {
        iteration,
        base,
        bytes,
    }) = store.bundle(lock_id)?
    else {
        return Ok(lock_iteration);
    };
    if lock_iteration.is_some_and(|l| l >= iteration || (base != 0 && l != base)) {
        // Nothing new for it, or a delta it cannot take: don't spend the link.
        tracing::debug!(iteration, base, lock_iteration, "no bundle for this lock");
        if let Some(l) = lock_iteration {
            store.set_lock_seen(lock_id, l, base != 0 && l < iteration)?;
        }
        return Ok(lock_iteration);
    }
    tracing::debug!(
        iteration,
        base,
        bytes = bytes.len(),
        "bundle transfer starting"
    );
    let mut transfer = SyncTransfer::new(bytes, iteration, base)
        .map_err(|e| CoreError::Protocol(format!("bundle: {e:?}")))?;
    let mtu = u16::try_from(connection.mtu()).unwrap_or(u16::MAX);
    loop {
        for fragment in transfer.next_fragments(mtu) {
            within(deadline, connection.write(&fragment)).await?;
        }
        let fragment = within(deadline, connection.notification()).await?;
        match transfer
            .on_fragment(&fragment)
            .map_err(|e| CoreError::Protocol(format!("sync: {e:?}")))?
        {
            None => {}
            Some(SyncEvent::Progress(p)) => progress(p.done, p.total),
            Some(SyncEvent::Finished(outcome)) => {
                let (now_at, needs_full) = match outcome {
                    SyncOutcome::Applied { iteration } => (iteration, false),
                    SyncOutcome::Declined { current_iteration } => (current_iteration, false),
                    SyncOutcome::Failed {
                        reason,
                        current_iteration,
                    } => (current_iteration, matches!(reason, FailReason::WrongBase)),
                };
                tracing::debug!(?outcome, "bundle transfer finished");
                store.set_lock_seen(lock_id, now_at, needs_full)?;
                progress(transfer.progress().total, transfer.progress().total);
                return Ok(Some(now_at));
            }
        }
    }
}

/// Brings the lock's audit records into the outbox, batch by batch, each stored durably
/// before the next is asked for.
pub async fn pull_audit(
    store: &Store,
    connection: &mut dyn Connection,
    lock_id: &str,
    lock_key: &LockPublicKey,
    deadline: Instant,
) -> CoreResult<u32> {
    let mut pulled = 0;
    let mtu = u16::try_from(connection.mtu()).unwrap_or(u16::MAX);
    loop {
        // The lock's epoch as last seen: a lock wiped since answers from its oldest record.
        let (epoch, from_seq) = store.audit_pull_position(lock_id)?;
        let epoch = AuditEpoch::from_hex(&epoch).unwrap_or_default();
        let mut puller = AuditPuller::new(*lock_key, epoch, from_seq);
        for fragment in puller.request_fragments(mtu) {
            within(deadline, connection.write(&fragment)).await?;
        }
        let batch = loop {
            let fragment = within(deadline, connection.notification()).await?;
            if let Some(batch) = puller
                .on_fragment(&fragment)
                .map_err(|e| CoreError::Protocol(format!("audit: {e:?}")))?
            {
                break batch;
            }
        };
        let records: Vec<(u64, Vec<u8>)> = batch
            .records
            .into_iter()
            .map(|r| (r.record.seq, r.bytes))
            .collect();
        pulled += records.len() as u32;
        tracing::debug!(
            records = records.len(),
            more = batch.more,
            "audit batch pulled"
        );
        if !records.is_empty() {
            store.add_outbox(
                lock_id,
                &puller.epoch().to_string(),
                puller.next_seq(),
                &records,
            )?;
        }
        if !batch.more || records.is_empty() {
            return Ok(pulled);
        }
    }
}

/// What an upload did.
#[derive(Debug, Default)]
pub struct UploadReport {
    /// Records the server now holds (stored or already had): they left the phone.
    pub held: u32,
    /// Records the server refused: set aside in the store with the reason, not sent again.
    pub refused: u32,
    /// Locks whose upload failed (network, server, a lock the server does not know), with the
    /// error; their records stay for the next time. Other locks went on regardless.
    pub failed: Vec<(String, CoreError)>,
}

/// Uploads the outbox, lock by lock. Each record is judged by the server alone: what it
/// stored or already had leaves the phone, what it refused is set aside (kept, with the
/// reason, never sent again) so it blocks nothing after it. One lock's failure does not stop
/// the others. Errs with the first lock's error if any lock failed, after trying them all.
pub async fn upload_outbox(api: &crate::api::ApiClient, store: &Store) -> CoreResult<u32> {
    let mut report = upload_outbox_report(api, store).await?;
    match report.failed.is_empty() {
        true => Ok(report.held),
        false => Err(report.failed.swap_remove(0).1),
    }
}

/// [`upload_outbox`], with everything it did.
pub async fn upload_outbox_report(
    api: &crate::api::ApiClient,
    store: &Store,
) -> CoreResult<UploadReport> {
    let mut report = UploadReport::default();
    'locks: for (lock_id, records) in store.outbox()? {
        for chunk in records.chunks(256) {
            let body = AuditUpload {
                records: chunk.iter().map(|r| b64e(&r.bytes)).collect(),
            };
            let answer: Result<AuditReceipt, _> = api
                .call(
                    Method::POST,
                    &format!("/v1/locks/{lock_id}/audit"),
                    Some(&body),
                )
                .await;
            let receipt = match answer {
                Ok(r) if r.results.len() == chunk.len() => r,
                Ok(r) => {
                    report.failed.push((
                        lock_id,
                        CoreError::Protocol(format!(
                            "audit receipt: {} results for {} records",
                            r.results.len(),
                            chunk.len()
                        )),
                    ));
                    continue 'locks;
                }
                Err(e) => {
                    report.failed.push((lock_id, e.into()));
                    continue 'locks;
                }
            };
            let outcomes: Vec<(&OutboxRecord, UploadOutcome)> = chunk
                .iter()
                .zip(receipt.results)
                .map(|(record, result)| {
                    let outcome = match result.status.as_str() {
                        "stored" | "duplicate" => UploadOutcome::Held,
                        "refused" => UploadOutcome::Refused {
                            reason: result.reason.unwrap_or_else(|| "unknown".into()),
                            detail: result.detail.unwrap_or_default(),
                        },
                        _ => UploadOutcome::Unknown,
                    };
                    (record, outcome)
                })
                .collect();
            for (_, outcome) in &outcomes {
                match outcome {
                    UploadOutcome::Held => report.held += 1,
                    UploadOutcome::Refused { .. } => report.refused += 1,
                    UploadOutcome::Unknown => {}
                }
            }
            store.uploaded(&lock_id, &outcomes)?;
        }
    }
    if report.held + report.refused > 0 || !report.failed.is_empty() {
        tracing::info!(
            held = report.held,
            refused = report.refused,
            failed_locks = report.failed.len(),
            "audit records uploaded"
        );
    }
    for (lock_id, e) in &report.failed {
        tracing::warn!(lock = crate::diagnostics::short(lock_id), error = %e, "audit upload failed");
    }
    Ok(report)
}
