package dev.doorcore

import com.example.resident.visitTheLobby
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.Test

/** Runs android/README.md's usage example (scripts/test-kotlin compiles it from the README). */
class ReadmeExampleTest {
    @Test
    fun theReadmeExampleRunsAgainstAProperty() = runBlocking<Unit> {
        Testbed.start().use { testbed ->
            val alice = testbed.person("Alice")
            val said = visitTheLobby(
                testbed.serverUrl, tempDir("door-readme").path, alice.email, alice.password,
                JdkSigner(), TcpBleTransport("127.0.0.1", testbed.lockPort),
            )
            assertTrue("Lobby: open to you" in said, "$said")
            assertTrue("Lobby opened" in said, "$said")
            assertTrue(said.any { it.startsWith("Lobby keypad code: ") }, "$said")
            assertTrue(said.last().startsWith("Send the guest "), "$said")
        }
    }
}
