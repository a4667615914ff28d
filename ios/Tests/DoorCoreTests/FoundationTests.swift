import DoorCoreBindings
import Foundation
import XCTest

private let newYork = "America/New_York"
private let weekdays: [Weekday] = [.monday, .tuesday, .wednesday, .thursday, .friday]

/// "gym access only Monday-Friday 6 AM-10 PM" (the DOOR seed).
private func gym(notAfter: Date? = nil) -> KeySchedule {
    KeySchedule(windows: [ScheduleWindow(days: weekdays, startMinute: 6 * 60, endMinute: 22 * 60)],
                notBefore: nil, notAfter: notAfter)
}

private func utc(_ iso: String) -> Date {
    ISO8601DateFormatter().date(from: iso)!
}

private final class RefusingSigner: DeviceSigner, @unchecked Sendable {
    func publicKey() throws -> Data { try ephemeralDeviceSigner().publicKey() }
    func sign(message: Data) throws -> Data {
        throw DoorError.DeviceKey(reason: "user cancelled Face ID")
    }
}

/// Keeps what the core forwards, as an app's os_log forwarder would hand it on.
private final class HeardLogs: LogListener, @unchecked Sendable {
    private let lock = NSLock()
    private var heard: [LogRecord] = []
    func onLog(record: LogRecord) { lock.withLock { heard.append(record) } }
    var records: [LogRecord] { lock.withLock { heard } }
}

final class FoundationTests: XCTestCase {
    func testGymIsOpenOnAWeekdayUntilTenPm() throws {
        let schedule = try DoorSchedule(schedule: gym(), timeZone: newYork)
        // Monday 2026-11-23 12:00 EST
        let decision = try schedule.decisionAt(at: utc("2026-11-23T17:00:00Z"))
        XCTAssertEqual(decision, .allowed(until: utc("2026-11-24T03:00:00Z")))
        XCTAssertEqual(schedule.timeZone(), newYork)
    }

    func testGymIsOutOfScheduleOnSaturdayAndSaysWhenItOpens() throws {
        let schedule = try DoorSchedule(schedule: gym(), timeZone: newYork)
        let decision = try schedule.decisionAt(at: utc("2026-11-28T17:00:00Z"))
        XCTAssertEqual(decision, .outOfSchedule(nextAllowed: utc("2026-11-30T11:00:00Z")))
    }

    func testBadWindowIsAnInvalidInputNamingTheField() {
        let bad = KeySchedule(windows: [ScheduleWindow(days: weekdays, startMinute: 0, endMinute: 1500)],
                              notBefore: nil, notAfter: nil)
        XCTAssertThrowsError(try DoorSchedule(schedule: bad, timeZone: newYork)) { error in
            guard case let DoorError.InvalidInput(field, reason) = error else {
                return XCTFail("expected InvalidInput, got \(error)")
            }
            XCTAssertEqual(field, "windows[0].end_minute")
            XCTAssertFalse(reason.isEmpty)
        }
    }

    func testUnknownZoneIsAnInvalidInput() {
        XCTAssertThrowsError(try DoorSchedule(schedule: gym(), timeZone: "Mars/Olympus_Mons")) { error in
            guard case let DoorError.InvalidInput(field, _) = error else {
                return XCTFail("expected InvalidInput, got \(error)")
            }
            XCTAssertEqual(field, "time_zone")
        }
    }

    func testWaitForChangeIsAnAsyncFunctionOnTokio() async throws {
        let end = Date().addingTimeInterval(1.5)
        let always = KeySchedule(
            windows: [ScheduleWindow(days: weekdays + [.saturday, .sunday], startMinute: 0, endMinute: 1440)],
            notBefore: nil, notAfter: end)
        let schedule = try DoorSchedule(schedule: always, timeZone: newYork)
        let decision = await schedule.waitForChange(maxWaitMs: 10_000)
        guard case let .expired(at) = decision else { return XCTFail("got \(decision)") }
        // Instants cross the boundary at whole seconds.
        XCTAssertEqual(at.timeIntervalSince1970, end.timeIntervalSince1970.rounded(.down))
    }

    func testCancellingTheTaskEndsTheWaitInRust() async throws {
        let open = KeySchedule(
            windows: [ScheduleWindow(days: weekdays + [.saturday, .sunday], startMinute: 0, endMinute: 1440)],
            notBefore: nil, notAfter: nil)
        let schedule = try DoorSchedule(schedule: open, timeZone: newYork)
        let before = liveObjects()
        let started = Date()
        let waiting = Task { try await schedule.nextChange(maxWaitMs: 60_000) }
        try await Task.sleep(nanoseconds: 200_000_000)
        waiting.cancel()
        do {
            let decision = try await waiting.value
            XCTFail("the wait was not cancelled: \(decision)")
        } catch is CancellationError {}
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the Rust wait ran on after the cancel")
        XCTAssertEqual(liveObjects(), before, "the Cancellation was released")
    }

    func testASwiftSignerIsCalledBackFromRust() async throws {
        let signer = CountingSigner()
        let proof = try await proveDevicePossession(signer: signer, challenge: Data("server-challenge".utf8))
        XCTAssertEqual(signer.signed, 1)
        XCTAssertEqual(proof.publicKey, try signer.publicKey())
        XCTAssertEqual(proof.signature.count, 64)
    }

    func testASignerThatThrowsGivesATypedError() async {
        do {
            _ = try await proveDevicePossession(signer: RefusingSigner(), challenge: Data([1]))
            XCTFail("expected an error")
        } catch let DoorError.DeviceKey(reason) {
            XCTAssertTrue(reason.contains("Face ID"), reason)
        } catch {
            XCTFail("expected DeviceKey, got \(error)")
        }
    }

    /// The one test that passes a BleTransport: an app that must own the radio gives the core
    /// its BLE stack (here the testbed's TCP framing, `TcpBleTransport`) and the core unlocks
    /// through it. Every other unlock here goes through the core's own radio.
    func testAnAppThatOwnsTheRadioUnlocksThroughItsBleTransport() async throws {
        let before = liveObjects()
        let testbed = try Testbed()
        defer { testbed.close() }
        let alice = testbed.person("Alice")
        let lobby = testbed.door("Lobby")
        let ble = TcpBleTransport(port: testbed.info.lockPort)
        do {
            let app = try DoorClient(
                config: ClientConfig(serverUrl: testbed.info.serverUrl, dataDir: try temporaryDirectory("door-own-radio"),
                                     requestTimeoutMs: 5000),
                signer: CountingSigner(), listener: nil, ble: ble)
            _ = try await app.signIn(email: alice.email, password: alice.password)
            let receipt = try await app.unlock(doorId: lobby.id, timeoutMs: 10_000, cancellation: nil)
            XCTAssertGreaterThanOrEqual(receipt.attempts, 1)
        }
        XCTAssertGreaterThanOrEqual(ble.connections, 1)
        XCTAssertGreaterThanOrEqual(ble.writes, 1)
        XCTAssertGreaterThanOrEqual(ble.notifications, 1)
        // The core lets go of the client once its last task (the audit upload after the
        // unlock) ends: wait for that, so that no later test counts it.
        let deadline = Date().addingTimeInterval(5)
        while liveObjects() != before && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(liveObjects(), before, "the client was not released")
    }

    func testTenThousandObjectsLeaveNothingBehind() throws {
        let before = liveObjects()
        for i in 0..<10_000 {
            let schedule = try DoorSchedule(schedule: gym(), timeZone: newYork)
            if i % 1000 == 0 { _ = schedule.decisionNow() }
        }
        XCTAssertEqual(liveObjects(), before)
    }

    /// An app forwards the core's records to os_log through a LogListener; none carries the password.
    func testTheCoresLogsReachTheListenerAndTheCollectedLogs() async throws {
        let heard = HeardLogs()
        setLogLevel(level: .debug)
        setLogListener(listener: heard)
        defer {
            setLogListener(listener: nil)
            setLogLevel(level: .info)
        }
        // Nobody listens on port 9: the sign-in fails, and the core logs why.
        let app = try DoorClient(
            config: ClientConfig(serverUrl: "http://127.0.0.1:9", dataDir: try temporaryDirectory("door-logs"),
                                 requestTimeoutMs: 2000),
            signer: CountingSigner(), listener: nil, ble: nil)
        do {
            _ = try await app.signIn(email: "a@b.c", password: "hunter2-secret")
            XCTFail("expected Offline")
        } catch DoorError.Offline {}
        let failed = { (r: LogRecord) in
            r.level == .warn && r.target == "door_core::api" && r.message.contains("path=/v1/auth/login")
        }
        XCTAssertTrue(heard.records.contains(where: failed), "\(heard.records)")
        XCTAssertTrue(collectedLogs().contains(where: failed))
        XCTAssertFalse(heard.records.contains { $0.message.contains("hunter2-secret") })
    }
}
