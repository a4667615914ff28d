//! Dropping the fake kills its daemon and removes its files. This is the only test of its
//! binary: any other fake in the process would reuse the same socket path right away.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use door_ble_rig::{FakeBluez, FakeBluezConfig};

#[test]
fn drop_kills_the_daemon_and_removes_its_files() {
    let fake = FakeBluez::start(FakeBluezConfig::new()).expect("fake BlueZ");
    assert_eq!(
        std::env::var("DBUS_SYSTEM_BUS_ADDRESS").unwrap(),
        fake.bus_address()
    );
    let socket = PathBuf::from(
        fake.bus_address()
            .strip_prefix("unix:path=")
            .expect("a unix socket address"),
    );
    assert!(UnixStream::connect(&socket).is_ok());
    drop(fake);
    assert!(UnixStream::connect(&socket).is_err());
    assert!(!socket.parent().unwrap().exists());
}
