//! Which person a verified identity is. The rule: a person is known by one (issuer, subject)
//! per property, linked at their first token sign-in; before that, a token links to the person
//! of the property with the token's email, only when the issuer says it verified that email
//! and the person has no identity yet. After linking, the subject alone counts: an email
//! changed at the issuer neither moves nor loses the link. Tokens never create people.

use door_protocol::Id;
use rusqlite::{params, OptionalExtension, Transaction};

use super::verify::Identity;
use crate::access::{blob_id, id_param};
use crate::error::{ApiError, ApiResult};

/// Why no person was found, for the server's log; the caller gets `ApiError::forbidden`.
pub fn unknown(identity: &Identity) -> ApiError {
    eprintln!(
        "door-server: token sign-in: no person has identity {:?} at {:?} (email {})",
        identity.subject,
        identity.issuer,
        match &identity.verified_email {
            Some(_) => "verified, matching no unlinked person",
            None => "absent or not verified",
        }
    );
    ApiError::forbidden("no person of this property is known by this identity")
}

/// The person of one of `properties` (those whose configured issuer accepted the token) that
/// `identity` is, linking them on first use. `None`: no such person.
pub fn person_for(
    tx: &Transaction<'_>,
    identity: &Identity,
    properties: &[Id],
    now: i64,
) -> ApiResult<Option<Id>> {
    let mut linked = Vec::new();
    for property in properties {
        let person: Option<Vec<u8>> = tx
            .query_row(
                "SELECT person_id FROM person_identities \
                 WHERE property_id = ?1 AND issuer = ?2 AND subject = ?3",
                params![id_param(property), identity.issuer, identity.subject],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(person) = person {
            linked.push(blob_id(person)?);
        }
    }
    match linked.as_slice() {
        [person] => return Ok(Some(*person)),
        [] => {}
        _ => {
            return Err(ApiError::conflict(
                "id_token",
                "this identity is linked to people of several properties sharing an issuer",
            ))
        }
    }
    let Some(email) = &identity.verified_email else {
        return Ok(None);
    };
    let found: Option<(Vec<u8>, Vec<u8>)> = tx
        .query_row(
            "SELECT p.id, p.property_id FROM people p \
             WHERE p.email = ?1 AND p.role != 'guest' \
             AND NOT EXISTS (SELECT 1 FROM person_identities i WHERE i.person_id = p.id)",
            [email],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((person, property)) = found else {
        return Ok(None);
    };
    let (person, property) = (blob_id(person)?, blob_id(property)?);
    if !properties.contains(&property) {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO person_identities (person_id, property_id, issuer, subject, linked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            id_param(&person),
            id_param(&property),
            identity.issuer,
            identity.subject,
            now
        ],
    )?;
    Ok(Some(person))
}
