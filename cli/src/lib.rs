//! door-cli: the `door` binary's parts. `main.rs` holds only the command line (clap); each
//! subcommand lives in its own module so the integration tests can reach the pieces they
//! share with the binary (the TCP link, the testbed's JSON).

pub mod demo;
#[cfg(target_os = "linux")]
mod gatt;
pub mod lock_sim;
pub mod locks;
pub mod remote;
pub mod show;
pub mod signer;
pub mod tcp_link;
pub mod testbed;

/// What a subcommand returns when it fails: printed as `door: <message>`, exit status 1.
pub type CliResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
