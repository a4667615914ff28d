import DoorCore
import DoorCoreBindings
import Foundation
import XCTest

/// A resident's day through the generated Swift API, as an iOS app runs it: against
/// `door testbed --json` (door-server and a reference lock per door, on the system clock),
/// with no BleTransport at all (the core's own radio: btleplug -> D-Bus -> the testbed's fake
/// BlueZ, see `CoreRadio`: the zero lines of BLE code an app writes), a Swift DeviceSigner,
/// and the DoorCore facade's AsyncStream of events.
final class ResidentDayTests: XCTestCase {
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

    /// A phone: the DoorCore facade over the generated client, its events drained from the
    /// facade's AsyncStream into a log the test can wait on.
    private struct Phone {
        let signer = CountingSigner()
        let events = EventLog()
        /// What `unlockEvents`, the facade's stream of unlocks only, delivered.
        let unlocks = EventLog()
        let core: DoorCoreClient
        var client: DoorClient { core.client }

        init(_ name: String, _ testbed: Testbed) throws {
            core = try DoorCoreClient(
                config: ClientConfig(serverUrl: testbed.info.serverUrl, dataDir: try temporaryDirectory("door-\(name)"),
                                     requestTimeoutMs: 5000),
                signer: signer)
            let stream = core.events
            let log = events
            Task { for await event in stream { log.onEvent(event: event) } }
            let unlockStream = core.unlockEvents
            let unlockLog = unlocks
            Task { for await event in unlockStream { unlockLog.onEvent(event: event) } }
        }
    }

    private func bed() throws -> Testbed {
        let testbed = try XCTUnwrap(ResidentDayTests.testbed, "no testbed")
        try XCTSkipIf(testbed.info.bluezBus == nil, "no fake BlueZ for the core's radio off Linux")
        return testbed
    }

    /// The first non-empty answer of `read`, asked again until one comes (bounded).
    private func awaitEntries(_ read: () async throws -> [AccessLogEntry]) async throws -> [AccessLogEntry] {
        for _ in 0..<150 {
            let entries = try await read()
            if !entries.isEmpty { return entries }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTFail("no access log entry came home")
        return []
    }

    func testAResidentsDay() async throws {
        let testbed = try bed()
        let alice = testbed.person("Alice")
        let lobby = testbed.door("Lobby")
        let unit = testbed.door("Unit 101") // Alice's apartment

        let phone = try Phone("alice", testbed)
        let app = phone.client
        // Sign in: the device key proves possession through the Swift signer.
        let person = try await app.signIn(email: alice.email, password: alice.password)
        XCTAssertEqual(person.name, "Alice")
        XCTAssertTrue(app.isSignedIn())
        XCTAssertGreaterThanOrEqual(phone.signer.signed, 1, "the core never asked the Swift signer")

        // Her doors: sorted, named by door names only (never a key name).
        let names = try app.doors().map(\.name)
        XCTAssertEqual(names, names.sorted())
        let doorNames = Set(testbed.info.doors.map(\.name))
        XCTAssertTrue(names.allSatisfy(doorNames.contains), "\(names)")
        XCTAssertTrue(names.contains(lobby.name) && names.contains(unit.name), "\(names)")
        XCTAssertFalse(names.contains { $0.localizedCaseInsensitiveContains("key") }, "\(names)")

        // Unlock the Lobby through the core's radio: the lock answered over BLE.
        let receipt = try await app.unlock(doorId: lobby.id, timeoutMs: 10_000)
        XCTAssertGreaterThanOrEqual(receipt.attempts, 1)
        XCTAssertLessThan(abs(receipt.lockTime.timeIntervalSinceNow), 300, "\(receipt.lockTime)")
        XCTAssertGreaterThanOrEqual(receipt.pendingAudit, 1, "the lock kept no record of the unlock: \(receipt)")
        let course: [UnlockPhase] = [.started, .connecting(attempt: 1), .authorizing, .succeeded(receipt: receipt)]
        let ended = await phone.unlocks.waitFor(.unlock(doorId: lobby.id, trigger: .explicit, phase: .succeeded(receipt: receipt)))
        XCTAssertTrue(ended, "\(phone.unlocks.events)")
        XCTAssertEqual(phone.unlocks.events, course.map { .unlock(doorId: lobby.id, trigger: .explicit, phase: $0) })
        XCTAssertTrue(try app.recentActivity(limit: 10).contains { $0.doorId == lobby.id && $0.outcome == "granted" })

        // The Lobby keypad's doorcode.
        let code = try XCTUnwrap(try app.doorcode(doorId: lobby.id))
        XCTAssertFalse(code.isEmpty)
        XCTAssertTrue(code.allSatisfy(\.isNumber), code)

        // Invite a guest to the Lobby and her unit, for two days.
        let from = Date()
        let until = from.addingTimeInterval(48 * 3600)
        let invite = try await app.inviteGuest(doorIds: [lobby.id, unit.id], contact: "+1 555 0100", from: from, until: until)
        XCTAssertEqual(Set(invite.guest.doorIds), [lobby.id, unit.id])
        XCTAssertEqual(invite.guest.contact, "+1 555 0100")
        XCTAssertEqual(invite.guest.until.timeIntervalSince1970, until.timeIntervalSince1970.rounded(.down))
        XCTAssertFalse(invite.guest.redeemed)
        XCTAssertFalse(invite.inviteToken.isEmpty)

        // The guest's phone redeems the invite and opens the Lobby.
        let guest = try Phone("guest", testbed)
        _ = try await guest.client.redeemInvite(inviteToken: invite.inviteToken)
        XCTAssertTrue(guest.client.isSignedIn())
        XCTAssertEqual(Set(try guest.client.doors().map(\.name)), [lobby.name, unit.name])
        let guestReceipt = try await guest.client.unlock(doorId: lobby.id, timeoutMs: 10_000)
        XCTAssertGreaterThanOrEqual(guestReceipt.attempts, 1)
        let guestConnected = await guest.events.waitFor(.unlock(doorId: lobby.id, trigger: .explicit, phase: .connecting(attempt: 1)))
        XCTAssertTrue(guestConnected, "\(guest.events.events)")

        // The access log, once the unlocks' records are home (each phone uploads them after
        // the unlock's Door Sync). The Lobby is shared: each sees their own entries there,
        // never the other's.
        let theirs = try await awaitEntries { try await guest.client.accessLog(doorId: lobby.id, before: nil, limit: 50).entries }
        XCTAssertEqual(Set(theirs.map(\.personName)), ["+1 555 0100"])
        let mine = try await awaitEntries { try await app.accessLog(doorId: lobby.id, before: nil, limit: 50).entries }
        XCTAssertEqual(Set(mine.map(\.personName)), ["Alice"])
        XCTAssertEqual(mine.first?.outcome, .granted)
        XCTAssertEqual(mine.first?.method, .ble)

        // Alice sees the guest (redeemed) and revokes them.
        let guests = try await app.guests()
        let listed = try XCTUnwrap(guests.first { $0.id == invite.guest.id })
        XCTAssertTrue(listed.redeemed)
        XCTAssertFalse(listed.revoked)
        // First her unit only: the guest keeps the Lobby.
        let narrowed = try await app.revokeGuestDoor(guestId: invite.guest.id, doorId: unit.id)
        XCTAssertEqual(narrowed.doorIds, [lobby.id])
        XCTAssertFalse(narrowed.revoked)
        let guestDoors = try await guest.client.refresh()
        XCTAssertEqual(guestDoors.map(\.name), [lobby.name])
        let revoked = try await app.revokeGuest(guestId: invite.guest.id)
        XCTAssertTrue(revoked.revoked)

        // The guest's session is over, and the app is told.
        do {
            _ = try await guest.client.refresh()
            XCTFail("the guest's refresh should fail")
        } catch DoorError.SessionExpired {
        } catch {
            XCTFail("expected SessionExpired, got \(error)")
        }
        let told = await guest.events.waitFor(.sessionExpired)
        XCTAssertTrue(told, "\(guest.events.events)")
    }

    /// Hands-free: the testbed's locks all advertise as if the phone were at them.
    func testTheLobbyOpensHandsFreeWithNoBluetoothCodeInTheApp() async throws {
        let testbed = try bed()
        let alice = testbed.person("Alice")
        let lobby = testbed.door("Lobby")
        let phone = try Phone("alice-hands-free", testbed)
        let app = phone.client
        _ = try await app.signIn(email: alice.email, password: alice.password)
        XCTAssertFalse(app.isProximityUnlockOn())
        // Only the Lobby, though every lock is near.
        try await app.startProximityUnlock(settings: ProximitySettings(doorIds: [lobby.id]))
        XCTAssertTrue(app.isProximityUnlockOn())
        let deadline = Date().addingTimeInterval(15)
        var end: DoorEvent?
        while end == nil && Date() < deadline {
            end = phone.unlocks.events.first {
                guard case let .unlock(_, trigger, phase) = $0, trigger == .proximity else { return false }
                switch phase {
                case .succeeded, .failed, .cancelled: return true
                default: return false
                }
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        guard case let .unlock(doorId, _, phase) = try XCTUnwrap(end, "\(phone.unlocks.events)") else { return }
        XCTAssertEqual(doorId, lobby.id)
        guard case .succeeded = phase else { return XCTFail("\(phase)") }
        await app.stopProximityUnlock()
        XCTAssertFalse(app.isProximityUnlockOn())
        do {
            try await app.startProximityUnlock(settings: ProximitySettings(unlockRssi: -80, awayRssi: -70))
            XCTFail("settings that cannot work should be refused")
        } catch let DoorError.InvalidInput(field, _) {
            XCTAssertEqual(field, "away_rssi")
        }
    }

    /// OpenDOOR's setupWithToken: the partner app's own ID token, no second password.
    func testAResidentSignsInWithThePartnerAppsIdToken() async throws {
        let testbed = try XCTUnwrap(ResidentDayTests.testbed, "no testbed")
        let oidc = testbed.info.oidc
        let phone = try Phone("token", testbed)
        let app = phone.client

        // A token the server does not take (here: not the nonce the app sent) is typed.
        do {
            _ = try await app.signInWithToken(idToken: oidc.idToken, nonce: "not-the-tokens-nonce")
            XCTFail("a token without the app's nonce should be refused")
        } catch let DoorError.InvalidInput(field, _) {
            XCTAssertEqual(field, "id_token")
        } catch {
            XCTFail("expected InvalidInput, got \(error)")
        }
        XCTAssertFalse(app.isSignedIn())

        let person = try await app.signInWithToken(idToken: oidc.idToken, nonce: oidc.nonce)
        XCTAssertEqual(person.name, oidc.name)
        XCTAssertTrue(app.isSignedIn())
        let names = try app.doors().map(\.name)
        XCTAssertTrue(names.contains("Lobby"), "\(names)")
    }

    func testEveryDoorHasADecisionNowAndErrorsArriveTyped() async throws {
        let testbed = try bed()
        let bob = testbed.person("Bob")
        let phone = try Phone("bob", testbed)
        let app = phone.client

        // Before signing in: a typed NotSignedIn, not a string.
        XCTAssertFalse(app.isSignedIn())
        do {
            _ = try await app.refresh()
            XCTFail("refresh before signing in should fail")
        } catch DoorError.NotSignedIn {
        } catch {
            XCTFail("expected NotSignedIn, got \(error)")
        }

        _ = try await app.signIn(email: bob.email, password: bob.password)
        let doors = try app.doors()
        XCTAssertFalse(doors.isEmpty)
        for door in doors {
            // The instant answer, from the cache: no radio, no network.
            let decision = try app.accessNow(doorId: door.id)
            switch (decision, door.access) {
            case (.allowed, .allowed), (.outOfSchedule, .outOfSchedule), (.notYetValid, .notYetValid), (.expired, .expired):
                break
            default:
                XCTFail("\(door.name): accessNow \(decision), doors() \(door.access)")
            }
        }
        XCTAssertFalse(phone.events.events.contains {
            if case .unlock = $0 { return true } else { return false }
        }, "the radio was used: \(phone.events.events)")

        let now = Date()
        do {
            _ = try await app.inviteGuest(doorIds: [], contact: "+1 555 0100", from: now, until: now.addingTimeInterval(3600))
            XCTFail("an invite to no door should fail")
        } catch let DoorError.InvalidInput(field, reason) {
            XCTAssertEqual(field, "door_ids")
            XCTAssertFalse(reason.isEmpty)
        } catch {
            XCTFail("expected InvalidInput, got \(error)")
        }
    }

    func testAPersonListsAndRemovesTheirDevices() async throws {
        let testbed = try bed()
        let lea = testbed.person("Lea")
        let phone = try Phone("lea-phone", testbed)
        let tablet = try Phone("lea-tablet", testbed)
        let app = phone.client
        _ = try await app.signIn(email: lea.email, password: lea.password)
        _ = try await tablet.client.signIn(email: lea.email, password: lea.password)

        let devices = try await app.devices()
        XCTAssertEqual(devices.count, 2)
        let mine = try XCTUnwrap(devices.first { $0.thisDevice })
        let other = try XCTUnwrap(devices.first { !$0.thisDevice })
        XCTAssertNotNil(mine.lastSeen, "the phone fetched its doors at sign-in")
        XCTAssertLessThanOrEqual(mine.registeredAt, Date())

        // The tablet is removed: its session ends with it.
        try await app.removeDevice(deviceId: other.id)
        let left = try await app.devices()
        XCTAssertEqual(left.map(\.id), [mine.id])
        do {
            _ = try await tablet.client.refresh()
            XCTFail("the removed tablet's session should have ended")
        } catch DoorError.SessionExpired {
        } catch {
            XCTFail("expected SessionExpired, got \(error)")
        }

        // Someone else's device (or none) is an input error naming the field.
        do {
            try await app.removeDevice(deviceId: "00112233445566778899aabbccddeeff")
            XCTFail("removing a device that is not hers should fail")
        } catch let DoorError.InvalidInput(field, _) {
            XCTAssertEqual(field, "device_id")
        } catch {
            XCTFail("expected InvalidInput, got \(error)")
        }

        // Removing this phone's own device signs it out.
        try await app.removeDevice(deviceId: mine.id)
        XCTAssertFalse(app.isSignedIn())
        XCTAssertTrue(try app.doors().isEmpty)
    }
}
