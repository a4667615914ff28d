package dev.doorcore

import dev.doorcore.ffi.AccessDecision
import dev.doorcore.ffi.ClientConfig
import dev.doorcore.ffi.DeviceSigner
import dev.doorcore.ffi.DoorException
import dev.doorcore.ffi.DoorSchedule
import dev.doorcore.ffi.KeySchedule
import dev.doorcore.ffi.LogLevel
import dev.doorcore.ffi.LogListener
import dev.doorcore.ffi.LogRecord
import dev.doorcore.ffi.ScheduleWindow
import dev.doorcore.ffi.Weekday
import dev.doorcore.ffi.collectedLogs
import dev.doorcore.ffi.ephemeralDeviceSigner
import dev.doorcore.ffi.liveObjects
import dev.doorcore.ffi.proveDevicePossession
import dev.doorcore.ffi.setLogLevel
import dev.doorcore.ffi.setLogListener
import java.util.concurrent.CopyOnWriteArrayList
import java.time.Duration
import java.time.Instant
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.Test

private const val NEW_YORK = "America/New_York"

private val WEEKDAYS = listOf(Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY, Weekday.FRIDAY)

/** "gym access only Monday-Friday 6 AM-10 PM" (the DOOR seed). */
private fun gym(notAfter: Instant? = null) =
    KeySchedule(listOf(ScheduleWindow(WEEKDAYS, (6 * 60).toUShort(), (22 * 60).toUShort())), null, notAfter)

private class RefusingSigner : DeviceSigner {
    override fun publicKey(): ByteArray = ephemeralDeviceSigner().publicKey()
    override fun sign(message: ByteArray): ByteArray = throw DoorException.DeviceKey("user cancelled the biometric prompt")
}

class FoundationTest {
    @Test
    fun gymIsOpenOnAWeekdayUntilTenPm() {
        DoorSchedule(gym(), NEW_YORK).use { s ->
            // Monday 2026-11-23 12:00 EST
            val d = s.decisionAt(Instant.parse("2026-11-23T17:00:00Z"))
            assertEquals(AccessDecision.Allowed(Instant.parse("2026-11-24T03:00:00Z")), d)
            assertEquals(NEW_YORK, s.timeZone())
        }
    }

    @Test
    fun gymIsOutOfScheduleOnSaturdayAndSaysWhenItOpens() {
        DoorSchedule(gym(), NEW_YORK).use { s ->
            val d = s.decisionAt(Instant.parse("2026-11-28T17:00:00Z"))
            // Monday 2026-11-30 06:00 EST
            assertEquals(AccessDecision.OutOfSchedule(Instant.parse("2026-11-30T11:00:00Z")), d)
        }
    }

    @Test
    fun badWindowIsAnInvalidInputNamingTheField() {
        val bad = KeySchedule(listOf(ScheduleWindow(WEEKDAYS, 0u, 1500u)), null, null)
        val e = assertFailsWith<DoorException.InvalidInput> { DoorSchedule(bad, NEW_YORK) }
        assertEquals("windows[0].end_minute", e.field)
        assertTrue(e.reason.isNotEmpty())
    }

    @Test
    fun unknownZoneIsAnInvalidInput() {
        val e = assertFailsWith<DoorException.InvalidInput> { DoorSchedule(gym(), "Mars/Olympus_Mons") }
        assertEquals("time_zone", e.field)
    }

    @Test
    fun waitForChangeIsASuspendFunctionOnTokio() = runBlocking<Unit> {
        val end = Instant.now().plusMillis(1500)
        val always = KeySchedule(listOf(ScheduleWindow(Weekday.values().toList(), 0u, 1440u)), null, end)
        DoorSchedule(always, NEW_YORK).use { s ->
            val d = s.waitForChange(10_000u)
            assertTrue(d is AccessDecision.Expired, "got $d")
            // Instants cross the boundary at whole seconds.
            assertEquals(end.epochSecond, d.at.epochSecond)
        }
    }

    @Test
    fun cancellingTheCoroutineCancelsTheWait() = runBlocking<Unit> {
        DoorSchedule(gym(), NEW_YORK).use { s ->
            val started = System.nanoTime()
            assertFailsWith<TimeoutCancellationException> { withTimeout(200) { s.waitForChange(60_000u) } }
            assertTrue(Duration.ofNanos(System.nanoTime() - started) < Duration.ofSeconds(5))
        }
    }

    @Test
    fun jdkSignerProvesPossessionAndTheNormalizedSignatureStillVerifiesInTheJdk() = runBlocking<Unit> {
        val signer = JdkSigner()
        val challenge = "server-challenge-42".toByteArray()
        val proof = proveDevicePossession(signer, challenge)
        assertEquals(33, proof.publicKey.size)
        assertEquals(64, proof.signature.size)
        val message = "door-core/device-possession/v1".toByteArray() + byteArrayOf(0) + challenge
        assertTrue(signer.verifyRaw(message, proof.signature))
    }

    @Test
    fun aSignerThatThrowsGivesATypedError() = runBlocking<Unit> {
        val e = assertFailsWith<DoorException.DeviceKey> { proveDevicePossession(RefusingSigner(), byteArrayOf(1)) }
        assertTrue(e.reason.contains("cancelled"), e.reason)
    }

    @Test
    fun coreSignerWorksFromKotlinToo() = runBlocking<Unit> {
        val signer = ephemeralDeviceSigner()
        // The core's own signer is a Rust object behind the interface: close it like one.
        (signer as AutoCloseable).use {
            val proof = proveDevicePossession(signer, byteArrayOf(7, 7))
            assertTrue(proof.publicKey.contentEquals(signer.publicKey()))
        }
    }

    /**
     * The one test that passes a BleTransport: an app that must own the radio gives the core
     * its BLE stack (here the testbed's TCP framing, TcpBleTransport) and the core unlocks
     * through it. Every other unlock here goes through the core's own radio.
     */
    @Test
    fun anAppThatOwnsTheRadioUnlocksThroughItsBleTransport() = runBlocking<Unit> {
        val before = liveObjects()
        Testbed.start().use { testbed ->
            val alice = testbed.person("Alice")
            val lobby = testbed.door("Lobby")
            val ble = TcpBleTransport("127.0.0.1", testbed.lockPort)
            DoorCoreClient(ClientConfig(testbed.serverUrl, tempDir("door-own-radio").path, 5000u), JdkSigner(), ble).use { app ->
                app.signIn(alice.email, alice.password)
                val receipt = app.unlock(lobby.id, 10_000u)
                assertTrue(receipt.attempts >= 1u)
                assertTrue(ble.connections.get() >= 1 && ble.writes.get() >= 1 && ble.notifications.get() >= 1)
            }
        }
        // The core lets go of the client once its last task (the audit upload after the
        // unlock) ends: wait for that, so that no later test counts it.
        val deadline = System.nanoTime() + 5_000_000_000L
        while (liveObjects() != before && System.nanoTime() < deadline) Thread.sleep(10)
        assertEquals(before, liveObjects(), "the client was not released")
    }

    @Test
    fun tenThousandObjectsLeaveNothingBehind() {
        // An object another test left to the garbage collector would be freed during the loop.
        val before = settledLiveObjects()
        repeat(10_000) { i ->
            DoorSchedule(gym(), NEW_YORK).use { s -> if (i % 1000 == 0) s.decisionNow() }
        }
        assertEquals(before, liveObjects())
    }

    /** An app forwards the core's records to Logcat through a LogListener; none carries the password. */
    @Test
    fun theCoresLogsReachTheListenerAndTheCollectedLogs() = runBlocking<Unit> {
        val heard = CopyOnWriteArrayList<LogRecord>()
        setLogLevel(LogLevel.DEBUG)
        setLogListener(object : LogListener {
            override fun onLog(record: LogRecord) { heard.add(record) }
        })
        try {
            // Nobody listens on port 9: the sign-in fails, and the core logs why.
            DoorCoreClient(ClientConfig("http://127.0.0.1:9", tempDir("door-logs").path, 2000u), JdkSigner()).use { app ->
                assertFailsWith<DoorException.Offline> { app.signIn("a@b.c", "hunter2-secret") }
            }
            val failed = { r: LogRecord ->
                r.level == LogLevel.WARN && r.target == "door_core::api" && r.message.contains("path=/v1/auth/login")
            }
            assertTrue(heard.any(failed), "$heard")
            assertTrue(collectedLogs().any(failed))
            assertTrue(heard.none { it.message.contains("hunter2-secret") })
        } finally {
            setLogListener(null)
            setLogLevel(LogLevel.INFO)
        }
    }
}
