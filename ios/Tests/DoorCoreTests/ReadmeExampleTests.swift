import DoorCore
import XCTest

/// Runs ios/README.md's usage example (scripts/test-swift copies it into the test target),
/// which has no BLE code: its unlock goes through the core's own radio to the testbed's fake
/// BlueZ (`CoreRadio`).
final class ReadmeExampleTests: XCTestCase {
    func testTheReadmeExampleRunsAgainstAProperty() async throws {
        let testbed = try Testbed()
        defer { testbed.close() }
        try XCTSkipIf(testbed.info.bluezBus == nil, "no fake BlueZ for the core's radio off Linux")
        let alice = testbed.person("Alice")
        let said = try await visitTheLobby(
            server: testbed.info.serverUrl, dataDir: try temporaryDirectory("door-readme"),
            email: alice.email, password: alice.password,
            signer: CountingSigner())
        XCTAssertTrue(said.contains("Lobby: open to you"), "\(said)")
        XCTAssertTrue(said.contains("Lobby opened"), "\(said)")
        XCTAssertTrue(said.contains { $0.hasPrefix("Lobby keypad code: ") }, "\(said)")
        XCTAssertTrue(said.last?.hasPrefix("Send the guest ") ?? false, "\(said)")
    }
}
