//! The OpenAPI 3.1 document, generated from the handlers and models; served at /openapi.json
//! and committed as docs/openapi.json (a test fails when the committed copy is stale).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::error::ErrorBody;
use crate::{
    access_log, audit, devices, guests, health, manager, model, oidc, resident, sync, units,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "DOOR OS reference API", description = "The contract between door-core and a property's backend."),
    paths(
        manager::create_property, manager::get_property, manager::create_door, manager::list_doors,
        manager::create_key, manager::list_keys, manager::get_key, manager::update_key,
        manager::disable_doorcodes, manager::create_person, manager::list_people,
        manager::revoke_person, manager::assign_key, manager::unassign_key,
        manager::person_doorcodes, manager::update_assignment, manager::list_guests,
        devices::person_devices, devices::remove_person_device,
        resident::login, resident::refresh, resident::redeem_invite, resident::logout, resident::me,
        resident::device_challenge, resident::register_device, devices::my_devices,
        devices::remove_my_device, resident::my_doors,
        guests::invite_guest, guests::list_guests, guests::revoke_guest, guests::revoke_guest_door,
        audit::upload, audit::list,
        health::list,
        sync::bundle, sync::signed_time,
        units::door_unit, units::set_door_unit, units::person_unit, units::set_person_unit, access_log::access_log,
        oidc::set_issuer, oidc::get_issuer, oidc::delete_issuer, oidc::sign_in,
    ),
    components(schemas(crate::error::ErrorBody, model::ScheduleJson, model::WindowJson,
        model::SyncBundleJson, model::SignedTimeJson), responses(RateLimited)),
    modifiers(&Security, &CommonErrors, &HexIds),
    tags((name = "manager", description = "DOOR OS: the property's managers"),
         (name = "resident", description = "What the resident app (door-core) calls")),
)]
pub struct ApiDoc;

/// `rate_limited`: too many requests of this kind from this client address or for this
/// account (email, person or invite code); the next one is allowed after `Retry-After`
/// seconds, also given as `retry_after` in the body.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))]
pub struct RateLimited(pub ErrorBody);

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        for name in ["admin", "manager", "person"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The errors every operation of a kind can give, from the extractors rather than from its
/// own logic, added where the handler's annotation does not already describe them: 401 for an
/// operation with a bearer token (missing, unknown, expired, of the wrong kind, or the person's
/// grant has ended), 422 for one with a body or parameters (not JSON, a field missing or of the
/// wrong type, an id that is not 32 hex digits), and 404 for one with ids in its path (no such
/// thing, or not of the caller's property).
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{Operation, ParameterIn};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        let add = |op: &mut Operation| {
            let params = op.parameters.as_deref().unwrap_or_default();
            let in_path = params
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Path));
            let mut wanted = Vec::new();
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                wanted.push((
                    "401",
                    "`unauthorized`: the bearer token is missing, unknown, expired or not of the \
                     kind this operation needs, or the person's access has ended",
                ));
            }
            if in_path {
                wanted.push((
                    "404",
                    "`not_found`: nothing with an id of the path, or not of the caller's property",
                ));
            }
            if in_path || !params.is_empty() || op.request_body.is_some() {
                wanted.push((
                    "422",
                    "`invalid_input`: the body is not JSON or a parameter or field is missing, of \
                     the wrong type or out of range; `field` names it",
                ));
            }
            for (status, description) in wanted {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description));
            }
        };
        for item in api.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                for p in op.parameters.iter_mut().flatten() {
                    if let Some(pattern) = hex_pattern(&p.name) {
                        p.schema = Some(hex_string(pattern));
                    }
                }
                add(op);
            }
        }
    }
}

/// The pattern of an id (32 hex digits) or audit epoch (16) named `name`, if it is one.
fn hex_pattern(name: &str) -> Option<&'static str> {
    if name == "epoch" {
        Some("^[0-9a-fA-F]{16}$")
    } else if name.ends_with("_id") {
        Some("^[0-9a-fA-F]{32}$")
    } else {
        None
    }
}

fn hex_string(pattern: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .into()
}

/// Ids in request and response bodies: `*_id` and `door_ids`, 32 hex digits, as the server
/// checks them.
struct HexIds;

impl Modify for HexIds {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ArrayBuilder, Schema};
        use utoipa::openapi::RefOr;
        let Some(components) = api.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            let RefOr::T(Schema::Object(object)) = schema else {
                continue;
            };
            for (name, property) in object.properties.iter_mut() {
                let RefOr::T(Schema::Object(field)) = property else {
                    if name == "door_ids" {
                        *property = ArrayBuilder::new()
                            .items(hex_string("^[0-9a-fA-F]{32}$"))
                            .min_items(Some(1))
                            .into();
                    }
                    continue;
                };
                if name.ends_with("_id") && field.pattern.is_none() {
                    field.pattern = Some("^[0-9a-fA-F]{32}$".into());
                }
            }
        }
    }
}

pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
