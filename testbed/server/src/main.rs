//! door-server standalone: `door-server --db PATH --listen 127.0.0.1:PORT`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use door_server::limits::{Budget, Limits, Rate};
use door_server::seed::{Scale, Seeded};

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
    /// Create the seeds' "1800 Main St" (small: 4 apartments, 3 amenities) through the API
    /// once listening, and print it as one JSON line after the "listening" line: the property,
    /// its manager key, the people (password: the seeds') and the doors. For demos and the
    /// schemathesis stage of scripts/test.
    #[arg(long)]
    seed: bool,
    #[command(flatten)]
    rates: Rates,
}

/// Rate limits, each `COUNT/UNIT[:BURST]` (UNIT: s, min or h; BURST: how many may come at
/// once, COUNT unless given). A request over a limit is refused with 429 and `Retry-After`.
#[derive(clap::Args)]
struct Rates {
    /// Sign-ins per email.
    #[arg(long, default_value_t = Limits::default().sign_in.account)]
    rate_sign_in_account: Rate,
    /// Sign-ins per client address (an IPv6 client's /64).
    #[arg(long, default_value_t = Limits::default().sign_in.address)]
    rate_sign_in_address: Rate,
    /// Refreshes per person.
    #[arg(long, default_value_t = Limits::default().refresh.account)]
    rate_refresh_account: Rate,
    /// Refreshes per client address.
    #[arg(long, default_value_t = Limits::default().refresh.address)]
    rate_refresh_address: Rate,
    /// Invite redemptions per invite code.
    #[arg(long, default_value_t = Limits::default().invite.account)]
    rate_invite_account: Rate,
    /// Invite redemptions per client address.
    #[arg(long, default_value_t = Limits::default().invite.address)]
    rate_invite_address: Rate,
    /// Device registrations per person.
    #[arg(long, default_value_t = Limits::default().device.account)]
    rate_device_account: Rate,
    /// Device registrations per client address.
    #[arg(long, default_value_t = Limits::default().device.address)]
    rate_device_address: Rate,
    /// Device challenges per person.
    #[arg(long, default_value_t = Limits::default().challenge.account)]
    rate_challenge_account: Rate,
    /// Device challenges per client address.
    #[arg(long, default_value_t = Limits::default().challenge.address)]
    rate_challenge_address: Rate,
}

impl Rates {
    fn limits(&self) -> Limits {
        let budget = |account, address| Budget { account, address };
        Limits {
            sign_in: budget(self.rate_sign_in_account, self.rate_sign_in_address),
            refresh: budget(self.rate_refresh_account, self.rate_refresh_address),
            invite: budget(self.rate_invite_account, self.rate_invite_address),
            device: budget(self.rate_device_account, self.rate_device_address),
            challenge: budget(self.rate_challenge_account, self.rate_challenge_address),
        }
    }
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
            limits: args.rates.limits(),
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
    if args.seed {
        match door_server::seed::main_st(&server.url(), &args.admin_token, Scale::SMALL).await {
            Ok(seeded) => println!("{}", seeded_json(&seeded)),
            Err(e) => {
                eprintln!("door-server: cannot seed the property: {e}");
                server.stop().await;
                std::process::exit(1);
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    server.stop().await;
}

/// What `--seed` prints.
fn seeded_json(s: &Seeded) -> serde_json::Value {
    serde_json::json!({
        "property": s.property,
        "manager_key": s.manager_key,
        "password": door_server::seed::PASSWORD,
        "people": s.people.iter().map(|p| serde_json::json!({
            "id": p.person.id, "name": p.person.name, "role": p.person.role, "email": p.email,
        })).collect::<Vec<_>>(),
        "doors": s.doors.iter().map(|d| &d.door).collect::<Vec<_>>(),
    })
}
