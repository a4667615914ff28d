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
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let server = match door_server::start(
        args.listen,
        args.db.as_deref(),
        &args.admin_token,
        door_server::system_clock(),
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
