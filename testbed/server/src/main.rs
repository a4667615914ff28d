//! door-server standalone: `door-server --db PATH --listen 127.0.0.1:PORT`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Reference DOOR OS backend for door-core")]
struct Args {
    /// SQLite database file (created if missing); in memory when omitted.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Bearer token that may create properties; read from DOOR_ADMIN_TOKEN when omitted.
    #[arg(long, env = "DOOR_ADMIN_TOKEN")]
    admin_token: String,
    /// Devices one person may have registered at once; one more is refused (409 device_limit).
    #[arg(long, default_value_t = door_server::DEFAULT_DEVICE_LIMIT,
          value_parser = clap::value_parser!(u32).range(1..))]
    device_limit: u32,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let server = match door_server::start_with(
        args.listen,
        args.db.as_deref(),
        &args.admin_token,
        door_server::system_clock(),
        door_server::Options {
            device_limit: args.device_limit,
        },
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("door-server: cannot start on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    println!("door-server listening on {}", server.url());
    let _ = tokio::signal::ctrl_c().await;
    server.stop().await;
}
