package dev.doorcore

import dev.doorcore.ffi.ClientConfig
import dev.doorcore.ffi.Door
import java.time.Duration
import java.time.Instant
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test

/**
 * The doors stream (`DoorCoreClient.doors`, a Flow over `DoorClient.watchDoors`) and the
 * invite types (in-app, a temporary doorcode, or both, per door), through the generated
 * bindings against `door testbed --json`.
 */
class DoorsStreamTest {
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

    private fun phone(name: String) = DoorCoreClient(ClientConfig(testbed.serverUrl, tempDir("door-$name").path, 5000u), JdkSigner())

    @Test
    fun theDoorsFlowGivesTheCachedDoorsThenTheFreshOnes() {
        val before = settledLiveObjects()
        watchTheDoors()
        assertEquals(before, awaitLiveObjects(before), "a client or a doors watch was not released")
    }

    private fun watchTheDoors() = runBlocking<Unit> {
        val alice = testbed.person("Alice")
        val lobby = testbed.door("Lobby")
        val unit = testbed.door("Unit 101")
        phone("alice").use { host ->
            host.signIn(alice.email, alice.password)
            val now = Instant.now()
            val invite = host.inviteGuest(listOf(lobby.id, unit.id), "+1 555 0100", now, now.plus(Duration.ofDays(2)))
            phone("guest").use { guest ->
                guest.redeemInvite(invite.inviteToken)
                val lists = Channel<List<String>>(Channel.UNLIMITED)
                val collector = launch(Dispatchers.Default) {
                    guest.doors.collect { doors: List<Door> -> lists.send(doors.map { it.name }) }
                }
                withTimeout(10_000) {
                    // The cache first, without the network.
                    assertEquals(listOf(lobby.name, unit.name), lists.receive())
                    // The host takes the Lobby back; the guest's refresh brings the fresh list.
                    host.revokeGuestDoor(invite.guest.id, lobby.id)
                    guest.refresh()
                    assertEquals(listOf(unit.name), lists.receive())
                }
                collector.cancel()
                // A new collector starts from the cache as it is now.
                assertEquals(listOf(unit.name), withTimeout(10_000) { guest.doors.first().map { it.name } })
            }
        }
    }

    @Test
    fun aGuestInvitedWithADoorcodeGetsTheCodeOnceAndNoAppDoor() {
        val before = settledLiveObjects()
        inviteWithADoorcode()
        assertEquals(before, awaitLiveObjects(before), "a client was not released")
    }

    private fun inviteWithADoorcode() = runBlocking<Unit> {
        val alice = testbed.person("Alice")
        val lobby = testbed.door("Lobby")
        val unit = testbed.door("Unit 101")
        phone("host").use { host ->
            host.signIn(alice.email, alice.password)
            val now = Instant.now()
            // The dog walker has no app: a code for the Lobby's keypad; in-app for the unit.
            val invite = host.inviteGuest(listOf(unit.id), "dog walker", now, now.plus(Duration.ofHours(8)), doorcodeDoorIds = listOf(lobby.id))
            assertEquals(listOf(unit.id), invite.guest.doorIds)
            assertEquals(listOf(lobby.id), invite.guest.doorcodeDoorIds)
            val code = invite.doorcodes.single()
            assertEquals(lobby.id, code.doorId)
            assertTrue(code.code.all { it.isDigit() } && code.code.length >= 4, code.code)
            assertTrue(code.code != host.doorcode(lobby.id))
            // Listed with its doorcode door, never with the code.
            val listed = host.guests().single { it.id == invite.guest.id }
            assertEquals(listOf(lobby.id), listed.doorcodeDoorIds)
            // The guest's app opens the unit only: the Lobby is the keypad's.
            phone("walker").use { guest ->
                guest.redeemInvite(invite.inviteToken)
                assertEquals(listOf(unit.name), guest.doors().map { it.name })
            }
            host.revokeGuest(invite.guest.id)
        }
    }
}
