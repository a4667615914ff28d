package dev.doorcore

import dev.doorcore.ffi.AccessDecision
import dev.doorcore.ffi.AccessMethod
import dev.doorcore.ffi.AccessOutcome
import dev.doorcore.ffi.ClientConfig
import dev.doorcore.ffi.DoorEvent
import dev.doorcore.ffi.DoorException
import dev.doorcore.ffi.ProximitySettings
import dev.doorcore.ffi.UnlockPhase
import dev.doorcore.ffi.UnlockTrigger
import java.time.Duration
import java.time.Instant
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.onSubscription
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test

/**
 * A resident's day through the generated Kotlin API, as an Android app runs it: against
 * `door testbed --json` (door-server and a reference lock per door, on the system clock),
 * with no BleTransport at all (the core's own radio: btleplug -> D-Bus -> the testbed's fake
 * BlueZ, see [CoreRadio]: the zero lines of BLE code an app writes), a JDK ECDSA device key,
 * and the DoorCoreClient facade's SharedFlow of events.
 */
class ResidentDayTest {
    companion object {
        private lateinit var testbed: Testbed

        @BeforeClass @JvmStatic
        fun startTestbed() {
            testbed = Testbed.start()
        }

        @AfterClass @JvmStatic
        fun stopTestbed() {
            if (::testbed.isInitialized) testbed.close()
        }
    }

    /** A phone: the DoorCoreClient facade, its event flow collected into a log the test waits on. */
    private class Phone(name: String, scope: CoroutineScope) : AutoCloseable {
        val signer = JdkSigner()
        val events = EventLog()
        val client = DoorCoreClient(ClientConfig(testbed.serverUrl, tempDir("door-$name").path, 5000u), signer)
        private val subscribed = CompletableDeferred<Unit>()
        private val collector = scope.launch(Dispatchers.Default) {
            client.events.onSubscription { subscribed.complete(Unit) }.collect { events.onEvent(it) }
        }

        suspend fun ready() = apply { subscribed.await() }

        override fun close() {
            collector.cancel()
            client.close()
        }
    }

    /** The first non-empty answer of `read`, asked again until one comes (bounded). */
    private suspend fun <T> awaitEntries(read: suspend () -> List<T>): List<T> = withTimeout(15_000) {
        var entries = read()
        while (entries.isEmpty()) {
            delay(100)
            entries = read()
        }
        entries
    }

    /** The flow is hot: subscribe before the phone does anything. */
    private suspend fun CoroutineScope.phone(name: String) = Phone(name, this).ready()

    @Test
    fun aResidentsDay() = runBlocking<Unit> {
        val alice = testbed.person("Alice")
        val lobby = testbed.door("Lobby")
        val unit = testbed.door("Unit 101") // Alice's apartment

        phone("alice").use { phone ->
            val app = phone.client
            // Sign in: the device key proves possession with the JDK signer.
            val person = app.signIn(alice.email, alice.password)
            assertEquals("Alice", person.name)
            assertTrue(app.isSignedIn())
            assertTrue(phone.signer.signed >= 1, "the core never asked the Kotlin signer")

            // Her doors: sorted, named by door names only (never a key name).
            val doors = app.doors()
            val names = doors.map { it.name }
            assertEquals(names.sorted(), names)
            val doorNames = testbed.doors.map { it.name }.toSet()
            assertTrue(names.all { it in doorNames }, "a name that is not a door's: $names")
            assertTrue(lobby.name in names && unit.name in names, "$names")
            assertTrue(doors.none { it.name.contains("key", ignoreCase = true) }, "$names")

            // Unlock the Lobby through the core's radio: the lock answered over BLE. The unlock
            // flow (subscribed before the tap) tells its whole course.
            val course = async(start = CoroutineStart.UNDISPATCHED) { app.unlockEvents.take(4).toList() }
            val receipt = app.unlock(lobby.id, 10_000u)
            assertTrue(receipt.attempts >= 1u)
            assertTrue(Duration.between(receipt.lockTime, Instant.now()).abs() < Duration.ofMinutes(5), "${receipt.lockTime}")
            assertTrue(receipt.pendingAudit >= 1u, "the lock kept no record of the unlock: $receipt")
            assertEquals(
                listOf(UnlockPhase.Started, UnlockPhase.Connecting(1u), UnlockPhase.Authorizing, UnlockPhase.Succeeded(receipt))
                    .map { DoorEvent.Unlock(lobby.id, UnlockTrigger.EXPLICIT, it) },
                withTimeout(5_000) { course.await() },
            )
            assertTrue(app.recentActivity(10u).any { it.doorId == lobby.id && it.outcome == "granted" })

            // The Lobby keypad's doorcode.
            val code = app.doorcode(lobby.id)
            assertNotNull(code)
            assertTrue(code.isNotEmpty() && code.all { it.isDigit() }, code)

            // Invite a guest to the Lobby and her unit, for two days.
            val from = Instant.now()
            val until = from.plus(Duration.ofHours(48))
            val invite = app.inviteGuest(listOf(lobby.id, unit.id), "+1 555 0100", from, until)
            assertEquals(setOf(lobby.id, unit.id), invite.guest.doorIds.toSet())
            assertEquals("+1 555 0100", invite.guest.contact)
            assertEquals(until.epochSecond, invite.guest.until.epochSecond)
            assertFalse(invite.guest.redeemed)
            assertTrue(invite.inviteToken.isNotEmpty())

            // The guest's phone redeems the invite and opens the Lobby.
            phone("guest").use { guest ->
                guest.client.redeemInvite(invite.inviteToken)
                assertTrue(guest.client.isSignedIn())
                assertEquals(setOf(lobby.name, unit.name), guest.client.doors().map { it.name }.toSet())
                val guestReceipt = guest.client.unlock(lobby.id, 10_000u)
                assertTrue(guestReceipt.attempts >= 1u)
                assertNotNull(
                    guest.events.await { it == DoorEvent.Unlock(lobby.id, UnlockTrigger.EXPLICIT, UnlockPhase.Connecting(1u)) },
                    "${guest.events.events}",
                )

                // The access log, once the unlocks' records are home (each phone uploads them
                // after the unlock's Door Sync). The Lobby is shared: each sees their own
                // entries there, never the other's.
                val theirs = awaitEntries { guest.client.accessLog(lobby.id, null, 50u).entries }
                assertEquals(setOf<String?>("+1 555 0100"), theirs.map { it.personName }.toSet())
                val mine = awaitEntries { app.accessLog(lobby.id, null, 50u).entries }
                assertEquals(setOf<String?>("Alice"), mine.map { it.personName }.toSet())
                assertEquals(AccessOutcome.GRANTED, mine.first().outcome)
                assertEquals(AccessMethod.BLE, mine.first().method)

                // Alice sees the guest (redeemed) and revokes them.
                val listed = app.guests().single { it.id == invite.guest.id }
                assertTrue(listed.redeemed)
                assertFalse(listed.revoked)
                // First her unit only: the guest keeps the Lobby.
                val narrowed = app.revokeGuestDoor(invite.guest.id, unit.id)
                assertEquals(listOf(lobby.id), narrowed.doorIds)
                assertFalse(narrowed.revoked)
                assertEquals(listOf(lobby.name), guest.client.refresh().map { it.name })
                val revoked = app.revokeGuest(invite.guest.id)
                assertTrue(revoked.revoked)

                // The guest's session is over, and the app is told.
                assertFailsWith<DoorException.SessionExpired> { guest.client.refresh() }
                assertNotNull(guest.events.await { it == DoorEvent.SessionExpired }, "${guest.events.events}")
            }
        }
    }

    /** Hands-free: the testbed's locks all advertise as if the phone were at them. */
    @Test
    fun theLobbyOpensHandsFreeWithNoBluetoothCodeInTheApp() = runBlocking<Unit> {
        val alice = testbed.person("Alice")
        val lobby = testbed.door("Lobby")
        phone("alice-hands-free").use { phone ->
            val app = phone.client
            app.signIn(alice.email, alice.password)
            assertFalse(app.isProximityUnlockOn())
            val opened = async(start = CoroutineStart.UNDISPATCHED) {
                app.unlockEvents.first { it.trigger == UnlockTrigger.PROXIMITY && it.phase !is UnlockPhase.Started && it.phase !is UnlockPhase.Connecting && it.phase !is UnlockPhase.Authorizing }
            }
            // Only the Lobby, though every lock is near.
            app.startProximityUnlock(ProximitySettings(doorIds = listOf(lobby.id)))
            assertTrue(app.isProximityUnlockOn())
            val end = withTimeout(15_000) { opened.await() }
            assertEquals(lobby.id, end.doorId)
            assertTrue(end.phase is UnlockPhase.Succeeded, "${end.phase}")
            app.stopProximityUnlock()
            assertFalse(app.isProximityUnlockOn())
            // Bad settings are typed, with the field.
            val bad = assertFailsWith<DoorException.InvalidInput> {
                app.startProximityUnlock(ProximitySettings(unlockRssi = -80, awayRssi = -70))
            }
            assertEquals("away_rssi", bad.field)
        }
    }

    @Test
    fun everyDoorHasADecisionNowAndErrorsArriveTyped() = runBlocking<Unit> {
        val bob = testbed.person("Bob")
        phone("bob").use { phone ->
            val app = phone.client
            // Before signing in: a typed NotSignedIn, not a string.
            assertFalse(app.isSignedIn())
            assertFailsWith<DoorException.NotSignedIn> { app.refresh() }

            app.signIn(bob.email, bob.password)
            val doors = app.doors()
            assertTrue(doors.isNotEmpty())
            for (door in doors) {
                // The instant answer, from the cache: no radio, no network.
                val decision = app.accessNow(door.id)
                assertTrue(
                    decision is AccessDecision.Allowed || decision is AccessDecision.OutOfSchedule ||
                        decision is AccessDecision.NotYetValid || decision is AccessDecision.Expired,
                    "$decision",
                )
                assertEquals(door.access::class, decision::class, door.name)
            }
            assertTrue(phone.events.events.none { it is DoorEvent.Unlock }, "the radio was used: ${phone.events.events}")

            val now = Instant.now()
            val empty = assertFailsWith<DoorException.InvalidInput> {
                app.inviteGuest(emptyList(), "+1 555 0100", now, now.plus(Duration.ofHours(1)))
            }
            assertEquals("door_ids", empty.field)
            assertTrue(empty.reason.isNotEmpty())
        }
    }

    /** OpenDOOR's setupWithToken: the partner app's own ID token, no second password. */
    @Test
    fun aResidentSignsInWithThePartnerAppsIdToken() = runBlocking<Unit> {
        val oidc = testbed.oidc
        phone("token").use { phone ->
            val app = phone.client
            // A token the server does not take (here: not the nonce the app sent) is typed.
            val refused = assertFailsWith<DoorException.InvalidInput> {
                app.signInWithToken(oidc.idToken, "not-the-tokens-nonce")
            }
            assertEquals("id_token", refused.field)
            assertFalse(app.isSignedIn())

            val person = app.signInWithToken(oidc.idToken, oidc.nonce)
            assertEquals(oidc.name, person.name)
            assertTrue(app.isSignedIn())
            assertTrue(app.doors().any { it.name == "Lobby" }, "${app.doors().map { it.name }}")
        }
    }

    @Test
    fun aPersonListsAndRemovesTheirDevices() = runBlocking<Unit> {
        val lea = testbed.person("Lea")
        phone("lea-phone").use { phone ->
            phone("lea-tablet").use { tablet ->
                val app = phone.client
                app.signIn(lea.email, lea.password)
                tablet.client.signIn(lea.email, lea.password)

                val devices = app.devices()
                assertEquals(2, devices.size)
                val mine = devices.single { it.thisDevice }
                val other = devices.single { !it.thisDevice }
                assertNotNull(mine.lastSeen, "the phone fetched its doors at sign-in")
                assertTrue(mine.registeredAt <= Instant.now())

                // The tablet is removed: its session ends with it.
                app.removeDevice(other.id)
                assertEquals(listOf(mine.id), app.devices().map { it.id })
                assertFailsWith<DoorException.SessionExpired> { tablet.client.refresh() }

                // Someone else's device (or none) is an input error naming the field.
                val e = assertFailsWith<DoorException.InvalidInput> { app.removeDevice("00112233445566778899aabbccddeeff") }
                assertEquals("device_id", e.field)

                // Removing this phone's own device signs it out.
                app.removeDevice(mine.id)
                assertFalse(app.isSignedIn())
                assertTrue(app.doors().isEmpty())
            }
        }
    }
}
