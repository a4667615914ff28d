package dev.doorcore

import dev.doorcore.ffi.BleTransport
import dev.doorcore.ffi.ClientConfig
import dev.doorcore.ffi.DeviceSigner
import dev.doorcore.ffi.DoorClient
import dev.doorcore.ffi.DoorClientInterface
import dev.doorcore.ffi.Door
import dev.doorcore.ffi.DoorEvent
import dev.doorcore.ffi.DoorsListener
import dev.doorcore.ffi.EventListener
import kotlinx.coroutines.channels.BufferOverflow
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.SharedFlow
import kotlinx.coroutines.flow.asSharedFlow
import kotlinx.coroutines.flow.filterIsInstance

/**
 * The thin Kotlin face of door-core: the generated [DoorClient] (every call delegates to it),
 * with the core's events as a hot [SharedFlow] instead of a listener object. Events reach
 * the collectors subscribed when they happen (collect before you act); the core's thread
 * never blocks on a slow collector (the oldest of 256 buffered events is dropped).
 * The core drives the phone's Bluetooth itself; pass a [BleTransport] only if the app must
 * own the radio. Close it (or `use {}`) to free the Rust client.
 */
class DoorCoreClient private constructor(
    private val flow: MutableSharedFlow<DoorEvent>,
    val client: DoorClient,
) : DoorClientInterface by client, AutoCloseable {

    /** Without [ble] the core drives the radio itself; pass one only if the app owns the radio. */
    constructor(config: ClientConfig, signer: DeviceSigner? = null, ble: BleTransport? = null) :
        this(newFlow(), config, signer, ble)

    private constructor(flow: MutableSharedFlow<DoorEvent>, config: ClientConfig, signer: DeviceSigner?, ble: BleTransport?) :
        this(flow, DoorClient(config, signer, FlowListener(flow), ble))

    /** Every event of this client, delivered on the core's thread to the flow's buffer. */
    val events: SharedFlow<DoorEvent> = flow.asSharedFlow()

    /**
     * The unlocks only, tapped and hands-free alike: each reports `Started`, its progress, and
     * one of `Succeeded`, `Failed` or `Cancelled`.
     */
    val unlockEvents: Flow<DoorEvent.Unlock> = events.filterIsInstance<DoorEvent.Unlock>()

    /**
     * The doors stream (OpenDOOR `listenForLocks()`): the cached doors at once, then the doors
     * again after every refresh, sign-in, sign-out or Door Sync, and when a door's decision
     * changes with the time (the Pool opens at 09:00), until the collector stops. Cold: each
     * collector watches on its own. A slow collector sees the newest list (older ones it did
     * not take are dropped).
     */
    val doors: Flow<List<Door>> = callbackFlow {
        val watch = client.watchDoors(object : DoorsListener {
            override fun onDoors(doors: List<Door>) {
                trySend(doors)
            }
        })
        awaitClose { watch.cancel(); watch.close() }
    }.buffer(1, BufferOverflow.DROP_OLDEST)

    override fun close() = client.close()

    private class FlowListener(private val flow: MutableSharedFlow<DoorEvent>) : EventListener {
        override fun onEvent(event: DoorEvent) {
            flow.tryEmit(event)
        }
    }

    private companion object {
        init {
            // Through the runtime first, so that its JNI_OnLoad hands btleplug (the core's
            // default Bluetooth stack, droidplug) the JVM before the first unlock; JNA then
            // binds the same libdoor_core.so by name. Here, not in the generated bindings,
            // because it runs before the constructor first touches them.
            System.loadLibrary("door_core")
        }

        fun newFlow() = MutableSharedFlow<DoorEvent>(extraBufferCapacity = 256, onBufferOverflow = BufferOverflow.DROP_OLDEST)
    }
}
