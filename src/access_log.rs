//! A door's access log as the server keeps it from the locks' signed audit records (OpenDOOR
//! `getAccessLogs`): who came in, when by the lock's clock, how, and what the lock answered.
//! The server decides what this person may see (their own entries; every entry at a door of
//! their own unit); this module checks the request and reads the answer.

use door_protocol::UnixTime;

use crate::api::wire;
use crate::error::{CoreError, CoreResult};

/// The most entries a page may hold (the server's bound).
pub const MAX_LIMIT: u32 = 200;
/// Longer than any cursor the server gives.
const MAX_CURSOR: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Granted,
    Denied,
    /// The lock's log was full and it dropped records the server never received.
    RecordsLost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Ble,
    Doorcode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The lock's signed clock.
    pub at: UnixTime,
    pub outcome: Outcome,
    pub method: Option<Method>,
    pub person_id: Option<String>,
    pub person_name: Option<String>,
    pub deny_reason: Option<String>,
    pub lost: Option<u64>,
    pub cursor: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Pass as `before` for the next (older) page; `None` on the last.
    pub next: Option<String>,
}

/// The request's path, every part checked first: `door_id` 32 hex digits, `limit` 1 to 200,
/// `before` a cursor as the server gives them (letters, digits, `:`, `-`).
pub fn path(door_id: &str, before: Option<&str>, limit: u32) -> CoreResult<String> {
    let door = door_protocol::Id::from_hex(door_id)
        .ok_or_else(|| CoreError::invalid("door_id", "must be 32 hex digits"))?;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(CoreError::invalid(
            "limit",
            format!("must be 1 to {MAX_LIMIT}"),
        ));
    }
    let mut path = format!("/v1/me/doors/{door}/access-log?limit={limit}");
    if let Some(before) = before {
        // Checked here rather than escaped: a cursor is only ever one the server gave.
        let plain = |c: char| c.is_ascii_alphanumeric() || c == ':' || c == '-';
        if before.is_empty() || before.len() > MAX_CURSOR || !before.chars().all(plain) {
            return Err(CoreError::invalid(
                "before",
                "is not a cursor from a page of this log",
            ));
        }
        path.push_str("&before=");
        path.push_str(before);
    }
    Ok(path)
}

/// The server's page in the core's types; an outcome or method the API does not define is a
/// malformed answer.
pub fn page(json: wire::AccessLogPage) -> CoreResult<Page> {
    let malformed = |what: &str, value: &str| {
        CoreError::Api(crate::api::ApiError::Malformed(format!(
            "access log {what} {value:?}"
        )))
    };
    let entries = json
        .entries
        .into_iter()
        .map(|e| {
            let outcome = match e.outcome.as_str() {
                "granted" => Outcome::Granted,
                "denied" => Outcome::Denied,
                "records_lost" => Outcome::RecordsLost,
                other => return Err(malformed("outcome", other)),
            };
            let method = match e.method.as_deref() {
                None => None,
                Some("ble") => Some(Method::Ble),
                Some("doorcode") => Some(Method::Doorcode),
                Some(other) => return Err(malformed("method", other)),
            };
            Ok(Entry {
                at: e.at,
                outcome,
                method,
                person_id: e.person_id,
                person_name: e.person_name,
                deny_reason: e.deny_reason,
                lost: e.lost,
                cursor: e.cursor,
            })
        })
        .collect::<CoreResult<Vec<_>>>()?;
    Ok(Page {
        entries,
        next: json.next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: CoreResult<String>) -> String {
        match r {
            Err(CoreError::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_is_checked_before_it_leaves_and_names_the_field_at_fault() {
        let door = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            path(door, None, 50).unwrap(),
            format!("/v1/me/doors/{door}/access-log?limit=50")
        );
        let cursor = "1795532400:0102030405060708:7";
        assert_eq!(
            path(door, Some(cursor), 1).unwrap(),
            format!("/v1/me/doors/{door}/access-log?limit=1&before={cursor}")
        );
        assert_eq!(field(path("nope", None, 5)), "door_id");
        assert_eq!(field(path(door, None, 0)), "limit");
        assert_eq!(field(path(door, None, 201)), "limit");
        for bad in ["", "1&limit=200", "a b", &"1".repeat(101)] {
            assert_eq!(field(path(door, Some(bad), 5)), "before", "{bad}");
        }
    }

    #[test]
    fn an_outcome_the_api_does_not_define_is_a_malformed_answer() {
        let entry = |outcome: &str| wire::AccessLogEntry {
            at: 5,
            outcome: outcome.into(),
            method: Some("ble".into()),
            person_id: None,
            person_name: None,
            deny_reason: None,
            lost: None,
            cursor: "5:0102030405060708:0".into(),
        };
        let read = |outcome: &str| {
            page(wire::AccessLogPage {
                entries: vec![entry(outcome)],
                next: None,
            })
        };
        assert_eq!(read("denied").unwrap().entries[0].outcome, Outcome::Denied);
        assert!(matches!(
            read("opened"),
            Err(CoreError::Api(crate::api::ApiError::Malformed(_)))
        ));
    }
}
