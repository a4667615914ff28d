package io.crates.keyring

/**
 * Hands the app's Context to the core's default device-key store (android-native-keyring-store,
 * linked into libdoor_core.so), which keeps the key in SharedPreferences encrypted under an
 * Android Keystore key and reaches both through JNI. Call it once, e.g. in
 * `Application.onCreate`, before making a DoorClient without a DeviceSigner of your own.
 *
 * The class and method names are fixed by the JNI symbol the store exports.
 */
class Keyring {
    companion object {
        init {
            System.loadLibrary("door_core")
        }

        /** [context] is an `android.content.Context`; typed Any so this file builds on the JVM. */
        external fun initializeNdkContext(context: Any)
    }
}
