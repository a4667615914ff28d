//! The OpenAPI 3.1 document, generated from the handlers and models; served at /openapi.json
//! and committed as docs/openapi.json (a test fails when the committed copy is stale).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::error::ErrorBody;
use crate::{audit, devices, guests, manager, model, resident, sync};

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
        guests::invite_guest, guests::list_guests, guests::revoke_guest,
        audit::upload, audit::list,
        sync::bundle, sync::signed_time,
    ),
    components(schemas(crate::error::ErrorBody, model::ScheduleJson, model::WindowJson,
        model::SyncBundleJson, model::SignedTimeJson), responses(RateLimited)),
    modifiers(&Security),
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

pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
