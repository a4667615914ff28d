//! door-server: the reference DOOR OS backend. A real HTTP server (axum on tokio) over SQLite,
//! implementing the API contract door-core speaks; docs/openapi.json is generated from it.

pub mod access;
pub mod access_log;
pub mod audit;
pub mod auth;
pub mod db;
pub mod devices;
pub mod error;
pub mod extract;
pub mod guests;
pub mod health;
pub mod limits;
pub mod manager;
pub mod model;
pub mod oidc;
pub mod openapi;
pub mod policy;
pub mod resident;
pub mod schedule_json;
pub mod seed;
pub mod sessions;
pub mod sync;
pub mod test_issuer;
pub mod units;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use db::Db;

/// The server's notion of now, in Unix seconds; tests set it to walk through a week.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    })
}

/// How many devices one person may have registered at once, unless configured otherwise.
pub const DEFAULT_DEVICE_LIMIT: u32 = 5;

/// What an operator may tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Devices one person may have at once (removed ones do not count); one more is refused
    /// with `device_limit`.
    pub device_limit: u32,
    /// Rate limits on sign-in, refresh, invites and device registration.
    pub limits: limits::Limits,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            device_limit: DEFAULT_DEVICE_LIMIT,
            limits: limits::Limits::default(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
    pub admin_token_hash: Vec<u8>,
    pub options: Options,
    pub limiters: Arc<limits::Limiters>,
    /// The OpenID Connect issuers' signing keys, for token sign-in.
    pub oidc_keys: Arc<oidc::keys::KeyCache>,
}

impl AppState {
    pub fn new(db: Db, admin_token: &str, clock: Clock) -> AppState {
        AppState::with_options(db, admin_token, clock, Options::default())
    }

    pub fn with_options(db: Db, admin_token: &str, clock: Clock, options: Options) -> AppState {
        // Now rather than at the first sign-in for an unknown email, which would be slower
        // than the rest by one hash.
        auth::prepare_dummy_hash();
        AppState {
            db,
            clock,
            admin_token_hash: auth::token_hash(admin_token),
            limiters: Arc::new(limits::Limiters::new(&options.limits)),
            oidc_keys: Arc::new(oidc::keys::KeyCache::new()),
            options,
        }
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }
}

/// The API. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`, as `start`
/// does, for the per-address rate limits: without the client's address only the per-account
/// ones apply.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/properties", post(manager::create_property))
        .route("/v1/properties/{property_id}", get(manager::get_property))
        .route(
            "/v1/properties/{property_id}/doors",
            post(manager::create_door).get(manager::list_doors),
        )
        .route(
            "/v1/properties/{property_id}/keys",
            post(manager::create_key).get(manager::list_keys),
        )
        .route(
            "/v1/properties/{property_id}/keys/{key_id}",
            get(manager::get_key).put(manager::update_key),
        )
        .route(
            "/v1/properties/{property_id}/keys/{key_id}/disable-doorcodes",
            post(manager::disable_doorcodes),
        )
        .route(
            "/v1/properties/{property_id}/people",
            post(manager::create_person).get(manager::list_people),
        )
        .route(
            "/v1/properties/{property_id}/people/{person_id}/revoke",
            post(manager::revoke_person),
        )
        .route(
            "/v1/properties/{property_id}/people/{person_id}/keys",
            post(manager::assign_key),
        )
        .route(
            "/v1/properties/{property_id}/people/{person_id}/keys/{key_id}",
            axum::routing::delete(manager::unassign_key).patch(manager::update_assignment),
        )
        .route(
            "/v1/properties/{property_id}/guests",
            get(manager::list_guests),
        )
        .route(
            "/v1/properties/{property_id}/people/{person_id}/devices",
            get(devices::person_devices),
        )
        .route(
            "/v1/properties/{property_id}/people/{person_id}/devices/{device_id}",
            axum::routing::delete(devices::remove_person_device),
        )
        .route(
            "/v1/properties/{property_id}/people/{person_id}/doorcodes",
            get(manager::person_doorcodes),
        )
        .route(
            "/v1/properties/{property_id}/oidc",
            get(oidc::get_issuer)
                .put(oidc::set_issuer)
                .delete(oidc::delete_issuer),
        )
        .route("/v1/auth/login", post(resident::login))
        .route("/v1/auth/token", post(oidc::sign_in))
        .route("/v1/auth/refresh", post(resident::refresh))
        .route("/v1/auth/invite", post(resident::redeem_invite))
        .route("/v1/auth/logout", post(resident::logout))
        .route("/v1/me", get(resident::me))
        .route("/v1/me/devices/challenge", post(resident::device_challenge))
        .route(
            "/v1/me/devices",
            post(resident::register_device).get(devices::my_devices),
        )
        .route(
            "/v1/me/devices/{device_id}",
            axum::routing::delete(devices::remove_my_device),
        )
        .route("/v1/me/doors", get(resident::my_doors))
        .route(
            "/v1/me/guests",
            post(guests::invite_guest).get(guests::list_guests),
        )
        .route(
            "/v1/me/guests/{guest_id}",
            axum::routing::delete(guests::revoke_guest),
        )
        .route(
            "/v1/me/guests/{guest_id}/doors/{door_id}",
            axum::routing::delete(guests::revoke_guest_door),
        )
        .route("/v1/locks/{lock_id}/audit", post(audit::upload))
        .route("/v1/locks/{lock_id}/bundle", get(sync::bundle))
        .route("/v1/time", get(sync::signed_time))
        .route("/v1/properties/{property_id}/audit", get(audit::list))
        .route(
            "/v1/properties/{property_id}/doors/{door_id}/unit",
            get(units::door_unit).put(units::set_door_unit),
        )
        .route(
            "/v1/properties/{property_id}/people/{person_id}/unit",
            get(units::person_unit).put(units::set_person_unit),
        )
        .route(
            "/v1/me/doors/{door_id}/access-log",
            get(access_log::access_log),
        )
        .route("/v1/properties/{property_id}/locks", get(health::list))
        .fallback(|| async { error::ApiError::not_found("endpoint") })
        .with_state(state)
}

/// A server running on a tokio task; dropping the handle does not stop it, `stop` does.
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

/// Starts the server on `listen` (use 127.0.0.1:0 for a free port) over the database at
/// `db_path`, or an in-memory database, with the default options.
pub async fn start(
    listen: SocketAddr,
    db_path: Option<&Path>,
    admin_token: &str,
    clock: Clock,
) -> std::io::Result<ServerHandle> {
    start_with(listen, db_path, admin_token, clock, Options::default()).await
}

/// `start` with options.
pub async fn start_with(
    listen: SocketAddr,
    db_path: Option<&Path>,
    admin_token: &str,
    clock: Clock,
    options: Options,
) -> std::io::Result<ServerHandle> {
    let db = Db::open(db_path).map_err(std::io::Error::other)?;
    let state = AppState::with_options(db, admin_token, clock, options);
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(ServerHandle {
        addr,
        state,
        stop: Some(stop),
        task,
    })
}
