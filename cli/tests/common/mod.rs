//! Running the built `door` binary as a person or a test suite would.

#![allow(dead_code)] // each test binary uses its own part of this

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// `door` with colour off (as in a pipe) and a data directory of the test's own.
pub fn door(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_door"));
    c.env("NO_COLOR", "1")
        .env_remove("DOOR_SERVER")
        .env_remove("DOOR_PASSWORD")
        .env("DOOR_DATA_DIR", data_dir);
    c
}

pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(c: &mut Command) -> Ran {
    let out = c.stdin(Stdio::null()).output().expect("door runs");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A background `door` (lock-sim, testbed) that is stopped with SIGTERM when dropped, so
/// it cleans up after itself (the fake BlueZ's dbus-daemon, temporary directories).
pub struct Background {
    pub child: Child,
    pub lines: BufReader<ChildStdout>,
}

impl Background {
    pub fn spawn(c: &mut Command) -> Background {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("door starts");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout"));
        Background { child, lines }
    }

    /// Reads stdout until a line contains `marker`; returns the lines read, that one last.
    pub fn until(&mut self, marker: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.lines.read_line(&mut line).expect("readable stdout");
            assert!(n > 0, "door ended before printing {marker:?}: {seen:#?}");
            let done = line.contains(marker);
            seen.push(line.trim_end().to_owned());
            if done {
                return seen;
            }
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("door exits")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// The value after `key` on the line that starts with it (after indentation).
pub fn field<'a>(lines: &'a [String], key: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .unwrap_or_else(|| panic!("no {key:?} in {lines:#?}"))
}
