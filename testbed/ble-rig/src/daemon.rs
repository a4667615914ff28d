//! The private `dbus-daemon` the fake BlueZ lives on, and the per-process lease on its socket.
//!
//! btleplug reaches BlueZ through libdbus, and libdbus reads `DBUS_SYSTEM_BUS_ADDRESS` once per
//! process and caches it (`init_connections_unlocked` in dbus-bus.c). A second fake on a new
//! socket would therefore be invisible to btleplug in the same process. So every fake in a
//! process listens on the same socket path, one at a time: [`BusLease`] hands the path out and
//! makes concurrent tests of one process wait for each other. Separate processes (separate test
//! binaries, or cargo-nextest) use separate paths and run fully in parallel.

use std::fs;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which thread holds the process's bus, if any.
static HOLDER: Mutex<Option<ThreadId>> = Mutex::new(None);
static RELEASED: Condvar = Condvar::new();

fn holder() -> MutexGuard<'static, Option<ThreadId>> {
    // A test that panicked while holding the lock must not fail every later test.
    HOLDER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Exclusive use of this process's bus directory, released on drop.
pub(crate) struct BusLease {
    dir: PathBuf,
}

impl BusLease {
    /// Waits until no other fake of this process is alive. A second fake on the thread that
    /// already holds the lease would wait forever, so that is an error instead.
    pub(crate) fn acquire() -> Result<Self> {
        let me = thread::current().id();
        let mut holder = holder();
        while let Some(owner) = *holder {
            if owner == me {
                return Err(Error::AlreadyRunning);
            }
            holder = RELEASED
                .wait(holder)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *holder = Some(me);
        Ok(Self {
            // Short on purpose: a unix socket path must fit in 108 bytes.
            dir: std::env::temp_dir().join(format!("door-ble-rig-{}", std::process::id())),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for BusLease {
    fn drop(&mut self) {
        *holder() = None;
        RELEASED.notify_one();
    }
}

/// A `dbus-daemon` child process with a system-type configuration on a unix socket.
pub(crate) struct DbusDaemon {
    child: Child,
    dir: PathBuf,
    address: String,
}

impl DbusDaemon {
    /// Starts the daemon in `dir` (created afresh) and returns once its socket accepts.
    pub(crate) fn start(dir: &Path) -> Result<Self> {
        // A directory left by a killed earlier process with the same pid is stale.
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        fs::create_dir_all(dir)?;
        let socket = dir.join("system_bus_socket");
        let config = dir.join("system.conf");
        fs::write(&config, config_xml(&socket))?;
        let log = fs::File::create(dir.join("dbus-daemon.log"))?;

        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--nosyslog"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                Error::Daemon(format!(
                    "cannot run dbus-daemon ({e}); install the Debian package `dbus-daemon`"
                ))
            })?;
        // From here on, Drop kills the child and removes the directory on every error path.
        let mut daemon = Self {
            child,
            dir: dir.to_owned(),
            address: format!("unix:path={}", socket.display()),
        };
        daemon.wait_until_listening(&socket)?;
        Ok(daemon)
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    fn wait_until_listening(&mut self, socket: &Path) -> Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(Error::Daemon(format!(
                    "exited during startup ({status}): {}",
                    self.log()
                )));
            }
            if UnixStream::connect(socket).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Daemon(format!(
                    "socket not accepting after {STARTUP_TIMEOUT:?}: {}",
                    self.log()
                )));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn log(&self) -> String {
        let mut log = String::new();
        // The log only decorates an error message; an unreadable one just leaves it empty.
        if let Ok(mut file) = fs::File::open(self.dir.join("dbus-daemon.log")) {
            let _ = file.read_to_string(&mut log);
        }
        log
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        // Errors here mean the child is already gone or the directory already removed.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A system bus (so BlueZ-style policy applies and `org.bluez` can be owned) that lets anyone
/// own any name and talk to anyone: it exists only for one test.
fn config_xml(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}
