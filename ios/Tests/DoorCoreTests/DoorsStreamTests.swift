import DoorCore
import DoorCoreBindings
import Foundation
import XCTest

/// The doors stream (`DoorCoreClient.doors()`, an AsyncStream over `DoorClient.watchDoors`)
/// and the invite types (in-app, a temporary doorcode, or both, per door), through the
/// generated bindings against `door testbed --json`.
final class DoorsStreamTests: XCTestCase {
    nonisolated(unsafe) private static var testbed: Testbed?

    override class func setUp() {
        super.setUp()
        do {
            testbed = try Testbed()
        } catch {
            XCTFail("could not start door testbed: \(error)")
        }
    }

    override class func tearDown() {
        testbed?.close()
        testbed = nil
        super.tearDown()
    }

    private func phone(_ name: String) throws -> DoorCoreClient {
        let testbed = try XCTUnwrap(DoorsStreamTests.testbed, "no testbed")
        return try DoorCoreClient(
            config: ClientConfig(serverUrl: testbed.info.serverUrl, dataDir: try temporaryDirectory("door-\(name)"),
                                 requestTimeoutMs: 5000),
            signer: CountingSigner())
    }

    func testTheDoorsStreamGivesTheCachedDoorsThenTheFreshOnes() async throws {
        let testbed = try XCTUnwrap(DoorsStreamTests.testbed, "no testbed")
        let alice = testbed.person("Alice")
        let lobby = testbed.door("Lobby")
        let unit = testbed.door("Unit 101")
        let host = try phone("alice")
        _ = try await host.client.signIn(email: alice.email, password: alice.password)
        let from = Date()
        let invite = try await host.client.inviteGuest(doorIds: [lobby.id, unit.id], contact: "+1 555 0100", from: from,
                                                       until: from.addingTimeInterval(48 * 3600))
        let guest = try phone("guest")
        _ = try await guest.client.redeemInvite(inviteToken: invite.inviteToken)

        var lists = try guest.doors().makeAsyncIterator()
        // The cache first, without the network.
        let cached = await lists.next()
        XCTAssertEqual(cached?.map(\.name), [lobby.name, unit.name])
        // The host takes the Lobby back; the guest's refresh brings the fresh list.
        _ = try await host.client.revokeGuestDoor(guestId: invite.guest.id, doorId: lobby.id)
        _ = try await guest.client.refresh()
        let fresh = await lists.next()
        XCTAssertEqual(fresh?.map(\.name), [unit.name])
        // A new stream starts from the cache as it is now.
        var again = try guest.doors().makeAsyncIterator()
        let now = await again.next()
        XCTAssertEqual(now?.map(\.name), [unit.name])
    }

    func testAGuestInvitedWithADoorcodeGetsTheCodeOnceAndNoAppDoor() async throws {
        let testbed = try XCTUnwrap(DoorsStreamTests.testbed, "no testbed")
        let alice = testbed.person("Alice")
        let lobby = testbed.door("Lobby")
        let unit = testbed.door("Unit 101")
        let host = try phone("host")
        _ = try await host.client.signIn(email: alice.email, password: alice.password)
        let from = Date()
        // The dog walker has no app: a code for the Lobby's keypad; in-app for the unit.
        let invite = try await host.client.inviteGuest(doorIds: [unit.id], contact: "dog walker", from: from,
                                                       until: from.addingTimeInterval(8 * 3600), doorcodeDoorIds: [lobby.id])
        XCTAssertEqual(invite.guest.doorIds, [unit.id])
        XCTAssertEqual(invite.guest.doorcodeDoorIds, [lobby.id])
        XCTAssertEqual(invite.doorcodes.count, 1)
        let code = try XCTUnwrap(invite.doorcodes.first)
        XCTAssertEqual(code.doorId, lobby.id)
        XCTAssertTrue(code.code.count >= 4 && code.code.allSatisfy(\.isNumber), code.code)
        let own = try host.client.doorcode(doorId: lobby.id)
        XCTAssertNotEqual(code.code, own)
        // Listed with its doorcode door, never with the code.
        let guests = try await host.client.guests()
        let listed = try XCTUnwrap(guests.first { $0.id == invite.guest.id })
        XCTAssertEqual(listed.doorcodeDoorIds, [lobby.id])
        // The guest's app opens the unit only: the Lobby is the keypad's.
        let guest = try phone("walker")
        _ = try await guest.client.redeemInvite(inviteToken: invite.inviteToken)
        XCTAssertEqual(try guest.client.doors().map(\.name), [unit.name])
        _ = try await host.client.revokeGuest(guestId: invite.guest.id)
    }
}
