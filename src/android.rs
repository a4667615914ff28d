//! Android: btleplug's droidplug backend reaches `android.bluetooth` through JNI, so it must be
//! handed the JVM (`btleplug::platform::init`) before the first `Manager::new()`. The runtime
//! calls `JNI_OnLoad` when the app loads this library with `System.loadLibrary("door_core")`
//! (the Kotlin facade does so before JNA first touches it), on that Java thread: its context
//! class loader is the app's, which is how droidplug finds its Java classes
//! (`com.nonpolynomial.btleplug.android.impl.*`, packaged by android/build.gradle.kts).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use jni::sys::{jint, JNI_VERSION_1_6};
use jni::JavaVM;

/// Whether droidplug was initialised: without it btleplug panics at its first use, so the
/// radio answers "unavailable" instead (a library loaded by JNA alone, droidplug's classes
/// stripped by R8).
static RADIO_READY: AtomicBool = AtomicBool::new(false);

pub(crate) fn radio_ready() -> bool {
    RADIO_READY.load(Ordering::Acquire)
}

/// Runs once per process, when the library is loaded through `System.loadLibrary`.
///
/// Initialisation only looks droidplug's classes up (it needs no Bluetooth adapter or
/// permission yet). If they are missing (not packaged, or stripped by R8) the library still
/// loads, and an app that passes its own `BleTransport` works as before.
///
/// # Safety
///
/// Called by the Android runtime with its JavaVM.
#[no_mangle]
pub unsafe extern "system" fn JNI_OnLoad(
    vm: *mut jni::sys::JavaVM,
    _reserved: *mut c_void,
) -> jint {
    if !vm.is_null() {
        // SAFETY: the runtime passes a valid JavaVM pointer.
        let vm = unsafe { JavaVM::from_raw(vm) };
        let ready = catch_unwind(AssertUnwindSafe(|| {
            vm.attach_current_thread(btleplug::platform::init)
        }));
        RADIO_READY.store(matches!(ready, Ok(Ok(()))), Ordering::Release);
    }
    JNI_VERSION_1_6
}
