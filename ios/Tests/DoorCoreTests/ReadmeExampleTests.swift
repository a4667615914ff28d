import DoorCore
import XCTest

/// Runs ios/README.md's usage example (scripts/test-swift copies it into the test target).
final class ReadmeExampleTests: XCTestCase {
    func testTheReadmeExampleRunsAgainstAProperty() async throws {
        let testbed = try Testbed()
        defer { testbed.close() }
        let alice = testbed.person("Alice")
        let said = try await visitTheLobby(
            server: testbed.info.serverUrl, dataDir: try temporaryDirectory("door-readme"),
            email: alice.email, password: alice.password,
            signer: CountingSigner(), ble: TcpBleTransport(port: testbed.info.lockPort))
        XCTAssertTrue(said.contains("Lobby: open to you"), "\(said)")
        XCTAssertTrue(said.contains("Lobby opened"), "\(said)")
        XCTAssertTrue(said.contains { $0.hasPrefix("Lobby keypad code: ") }, "\(said)")
        XCTAssertTrue(said.last?.hasPrefix("Send the guest ") ?? false, "\(said)")
    }
}
