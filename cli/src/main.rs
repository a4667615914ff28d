//! `door`: the command line. Parsing only; each subcommand lives in its module of door_cli.
//! Exit status: 0 done, 1 failed (with a sentence on stderr), 2 bad arguments (clap).

use std::process::ExitCode;

use anstream::eprintln;
use clap::{Parser, Subcommand};
use door_cli::show::{paint, FAIL};
use door_cli::{demo, lock_sim, locks, remote, testbed, CliResult};

#[derive(Parser)]
#[command(
    name = "door",
    version,
    about = "door-core from the command line: the demo, a desktop client, simulated locks",
    long_about = "door-core from the command line.\n\n\
        `door demo` walks a resident's day at the seeds' \"1800 Main St\" with nothing to \
        configure. `door login`, `doors`, `unlock`, `invite`, `guests`, `revoke` and `logout` \
        use a real server (door-server runs standalone: `door-server --listen ADDR --db FILE`); \
        so does `door locks`, a manager's view of the locks' health. \
        `door lock-sim` stands up a simulated lock; `door testbed` a whole property for the \
        app test suites."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A resident's day, end to end, on an embedded server and simulated locks.
    Demo,
    /// Sign in to a property's server and register this computer as a device.
    Login(remote::LoginArgs),
    /// The doors you may open, and whether each opens to you now.
    Doors(remote::DoorsArgs),
    /// Open a door over Bluetooth LE (btleplug).
    Unlock(remote::UnlockArgs),
    /// Carry Door Sync data (revocations, doorcodes, the time) to a door's lock without
    /// opening it; the computer must be near the door.
    Sync(remote::UnlockArgs),
    /// Invite a guest to some of your doors.
    Invite(remote::InviteArgs),
    /// The guests you invited.
    Guests(remote::DirArg),
    /// Revoke a guest's invite.
    Revoke(remote::RevokeArgs),
    /// Sign out, forgetting the session, the cache and this computer's device key.
    Logout(remote::DirArg),
    /// For a property's manager: each lock's battery, firmware, clock and sync state, as the
    /// locks last reported them through residents' phones.
    Locks(locks::Args),
    /// Run a simulated reference lock, over TCP or on a fake BlueZ, until Ctrl-C.
    // Boxed: a lock key is large, and the other variants should not pay for it.
    LockSim(Box<lock_sim::Args>),
    /// A seeded property with a lock for every door, for the Kotlin and Swift suites;
    /// runs until standard input closes.
    Testbed(testbed::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}").into()),
    };
    let outcome = runtime.block_on(run(cli));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        // The demo said which steps did not behave; nothing more to add.
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(e),
    }
}

async fn run(cli: Cli) -> CliResult<bool> {
    match cli.command {
        Command::Demo => return demo::run().await,
        Command::Login(args) => remote::login(args).await?,
        Command::Doors(args) => remote::doors(args).await?,
        Command::Unlock(args) => remote::unlock(args).await?,
        Command::Sync(args) => remote::sync(args).await?,
        Command::Invite(args) => remote::invite(args).await?,
        Command::Guests(args) => remote::guests(args).await?,
        Command::Revoke(args) => remote::revoke(args).await?,
        Command::Logout(args) => remote::logout(args).await?,
        Command::Locks(args) => locks::run(args).await?,
        Command::LockSim(args) => lock_sim::run(*args).await?,
        Command::Testbed(args) => testbed::run(args).await?,
    }
    Ok(true)
}

fn fail(e: Box<dyn std::error::Error + Send + Sync>) -> ExitCode {
    eprintln!("{} {e}", paint(FAIL, "door:"));
    ExitCode::FAILURE
}
