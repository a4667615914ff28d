package dev.doorcore

import com.example.resident.visitTheLobby
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.Test

/**
 * Runs android/README.md's usage example (scripts/test-kotlin compiles it from the README),
 * which has no BLE code: its unlock goes through the core's own radio to the testbed's fake BlueZ.
 */
class ReadmeExampleTest {
    @Test
    fun theReadmeExampleRunsAgainstAProperty() = runBlocking<Unit> {
        Testbed.start().use { testbed ->
            val alice = testbed.person("Alice")
            val said = visitTheLobby(
                testbed.serverUrl, tempDir("door-readme").path, alice.email, alice.password, JdkSigner(),
            ) // no BleTransport: the core's radio reaches the testbed's fake BlueZ (see CoreRadio)
            assertTrue("Lobby: open to you" in said, "$said")
            assertTrue("Lobby opened" in said, "$said")
            assertTrue(said.any { it.startsWith("Lobby keypad code: ") }, "$said")
            assertTrue(said.last().startsWith("Send the guest "), "$said")
        }
    }
}
