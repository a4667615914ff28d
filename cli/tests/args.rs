//! The command line itself: help everywhere, exit 2 with a message for bad arguments, and
//! plain sentences (exit 1) when the server cannot be reached or nobody signed in.

mod common;

use common::*;

const SUBCOMMANDS: [&str; 11] = [
    "demo", "login", "doors", "unlock", "invite", "guests", "revoke", "logout", "locks",
    "lock-sim", "testbed",
];

#[test]
fn help_works_for_door_and_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let top = run(door(dir.path()).arg("--help"));
    assert_eq!(top.code, Some(0));
    for sub in SUBCOMMANDS {
        assert!(top.stdout.contains(sub), "{sub} not in door --help");
        let ran = run(door(dir.path()).args([sub, "--help"]));
        assert_eq!(ran.code, Some(0), "door {sub} --help: {}", ran.stderr);
        assert!(
            ran.stdout.contains(&format!("Usage: door {sub}")),
            "door {sub} --help:\n{}",
            ran.stdout
        );
    }
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    for (args, message) in [
        (&["frobnicate"][..], "unrecognized subcommand 'frobnicate'"),
        (&["demo", "--bogus"][..], "unexpected argument '--bogus'"),
        (&["unlock"][..], "required arguments were not provided"),
        (&["invite", "--contact", "x"][..], "--door <DOOR>"),
        (
            &[
                "invite",
                "--door",
                "Lobby",
                "--contact",
                "x",
                "--hours",
                "0",
            ][..],
            "--hours",
        ),
        (&["lock-sim"][..], "<--tcp <ADDR>|--fake-bluez>"),
        (
            &["lock-sim", "--tcp", "nowhere"][..],
            "invalid value 'nowhere'",
        ),
        (
            &["lock-sim", "--tcp", "127.0.0.1:0", "--lock-key", "zz"][..],
            "must be 64 hex digits",
        ),
        (
            &["lock-sim", "--tcp", "127.0.0.1:0", "--door-id", "12"][..],
            "must be 32 hex digits",
        ),
        (
            &["lock-sim", "--tcp", "127.0.0.1:0", "--battery", "101"][..],
            "101 is not in 0..=100",
        ),
        (
            &["lock-sim", "--tcp", "127.0.0.1:0", "--firmware", ""][..],
            "must be 1 to 32 printable ASCII characters",
        ),
        (&["locks", "--property", "x"][..], "--server <URL>"),
        (&["login", "--email", "a@b.c"][..], "--server <URL>"),
        (
            &[
                "login",
                "--server",
                "http://127.0.0.1:9",
                "--email",
                "a@b.c",
            ][..],
            "<--password-stdin|--password <PASSWORD>>",
        ),
    ] {
        let ran = run(door(dir.path()).args(args));
        assert_eq!(ran.code, Some(2), "door {args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(message),
            "door {args:?}: no {message:?} in\n{}",
            ran.stderr
        );
    }
}

#[test]
fn an_unreachable_server_is_a_sentence_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut login = door(dir.path());
    login
        .args([
            "login",
            "--server",
            "http://127.0.0.1:9",
            "--email",
            "a@b.c",
        ])
        .env("DOOR_PASSWORD", "secret");
    let ran = run(&mut login);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr
            .starts_with("door: cannot reach the server at http://127.0.0.1:9: "),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("panicked") && !ran.stderr.contains("backtrace"));

    // Nobody signed in (the failed login saved nothing).
    let ran = run(door(dir.path()).arg("doors"));
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr
            .contains("nobody is signed in here: run `door login"),
        "{}",
        ran.stderr
    );
}
