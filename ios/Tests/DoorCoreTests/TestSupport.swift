import DoorCoreBindings
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Points the core's own radio (btleplug -> libdbus) in this process at the fake BlueZ of the
/// testbed started last, so that a client built without a `BleTransport` unlocks as on a phone
/// whose app writes no BLE code.
///
/// libdbus reads DBUS_SYSTEM_BUS_ADDRESS once per process, at its first connection, and keeps
/// the address for good, while every testbed's fake BlueZ has a bus socket of its own. So this
/// process gets one address that never changes, a symlink in a directory of its own, set with
/// `setenv` before any test opens D-Bus; each testbed repoints the link at its bus socket. Each
/// new client opens a new D-Bus connection through the link, so it reaches the testbed alive
/// now. (Exporting the variable from scripts/test-swift would need the socket path before the
/// testbed exists, and would not hold for a test run from elsewhere.) Testbeds of one process
/// run one after another, as XCTest runs the tests.
enum CoreRadio {
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var link: String?
    }

    private static let state = State()

    /// Repoints this process's system bus at `bus` ("unix:path=..."), atomically.
    static func point(at bus: String) throws {
        state.lock.lock()
        defer { state.lock.unlock() }
        let link: String
        if let made = state.link {
            link = made
        } else {
            link = try temporaryDirectory("door-bus") + "/system_bus_socket"
            guard setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=\(link)", 1) == 0 else {
                throw TestbedError("setenv DBUS_SYSTEM_BUS_ADDRESS failed: errno \(errno)")
            }
            state.link = link
        }
        var socket = bus.hasPrefix("unix:path=") ? String(bus.dropFirst("unix:path=".count)) : bus
        if let comma = socket.firstIndex(of: ",") { socket = String(socket[..<comma]) }
        let next = link + ".next"
        unlink(next)
        guard symlink(socket, next) == 0, rename(next, link) == 0 else {
            throw TestbedError("cannot link \(link) to \(socket): errno \(errno)")
        }
    }
}

/// `door testbed --json`: door-server and a reference lock for every door, until stdin closes.
/// Its locks are reachable through the core's own radio (the fake BlueZ at `bluezBus`, which
/// `init` points `CoreRadio` at; Linux only, nil elsewhere) and over TCP at `lockPort`
/// (`TcpBleTransport`).
final class Testbed: @unchecked Sendable {
    struct Info: Decodable {
        struct Person: Decodable { let name: String; let email: String; let password: String }
        struct Door: Decodable { let id: String; let name: String; let lockId: String }
        /// The testbed's OpenID Connect issuer and a ready ID token it signed for `name`.
        struct Oidc: Decodable {
            let issuer: String; let audience: String; let idToken: String; let nonce: String
            let email: String; let name: String
        }
        let serverUrl: String
        let lockPort: UInt16
        let bluezBus: String?
        let timeZone: String
        let people: [Person]
        let doors: [Door]
        let oidc: Oidc
    }

    let info: Info
    private let process: Process
    private let stdin: Pipe

    /// The `door` binary: DOOR_BIN (scripts/test-swift passes it into the Swift root).
    static func doorBinary() throws -> String {
        guard let bin = ProcessInfo.processInfo.environment["DOOR_BIN"], !bin.isEmpty else {
            throw TestbedError("set DOOR_BIN to the door binary")
        }
        return bin
    }

    init() throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: try Testbed.doorBinary())
        process.arguments = ["testbed", "--json"]
        stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        // Read up to the first newline: the one JSON line.
        var line = Data()
        let reader = stdout.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let end = line.firstIndex(of: UInt8(ascii: "\n")) else {
            process.terminate()
            throw TestbedError("door testbed exited without its JSON line")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        info = try decoder.decode(Info.self, from: line[line.startIndex..<end])
        if let bus = info.bluezBus { try CoreRadio.point(at: bus) }
    }

    func person(_ name: String) -> Info.Person { info.people.first { $0.name == name }! }
    func door(_ name: String) -> Info.Door { info.doors.first { $0.name == name }! }

    /// Closing stdin ends the testbed.
    func close() {
        try? stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate() }
    }
}

struct TestbedError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A Swift DeviceSigner: no CryptoKit on Linux, so it delegates to a core key and counts the
/// callbacks it receives (an iOS app would use a Secure Enclave key here).
final class CountingSigner: DeviceSigner, @unchecked Sendable {
    private let inner = ephemeralDeviceSigner()
    private let lock = NSLock()
    private var count = 0
    var signed: Int { lock.lock(); defer { lock.unlock() }; return count }
    func publicKey() throws -> Data { try inner.publicKey() }
    func sign(message: Data) throws -> Data {
        lock.lock(); count += 1; lock.unlock()
        return try inner.sign(message: message)
    }
}

/// Collects the core's events (delivered on a core thread).
final class EventLog: EventListener, @unchecked Sendable {
    private let lock = NSLock()
    private var list: [DoorEvent] = []
    var events: [DoorEvent] { lock.lock(); defer { lock.unlock() }; return list }
    func onEvent(event: DoorEvent) { lock.lock(); list.append(event); lock.unlock() }

    /// Waits up to `timeout` seconds for `event`.
    func waitFor(_ event: DoorEvent, timeout: TimeInterval = 5) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if events.contains(event) { return true }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return events.contains(event)
    }
}

/// An app's BLE stack over the testbed's TCP framing (cli/README.md), on POSIX sockets: one TCP
/// connection is one BLE connection; the phone first sends the lock id and "\n"; every write
/// and every notification is a u16 big-endian length and the bytes. The blocking socket calls
/// run on Dispatch's global queue, never on the cooperative pool.
final class TcpBleTransport: BleTransport, @unchecked Sendable {
    static let mtu: UInt16 = 247
    private let port: UInt16
    private let lock = NSLock()
    private var sockets: [String: Int32] = [:]
    private var counts = (connections: 0, writes: 0, notifications: 0)

    init(port: UInt16) { self.port = port }

    var connections: Int { locked { counts.connections } }
    var writes: Int { locked { counts.writes } }
    var notifications: Int { locked { counts.notifications } }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    func connect(lockId: String, timeoutMs: UInt64) async throws -> UInt16 {
        closeSocket(of: lockId)
        let port = self.port
        let fd = try await offPool { () throws -> Int32 in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw BleFailure.Unavailable }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard rc == 0 else { Glibc.close(fd); throw BleFailure.NotInRange }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            do {
                try TcpBleTransport.sendAll(fd, Array((lockId + "\n").utf8))
            } catch {
                Glibc.close(fd)
                throw BleFailure.NotInRange
            }
            return fd
        }
        locked { sockets[lockId] = fd; counts.connections += 1 }
        return TcpBleTransport.mtu
    }

    func write(lockId: String, fragment: Data) async throws {
        let fd = try socketOf(lockId)
        let frame = [UInt8(fragment.count >> 8), UInt8(fragment.count & 0xff)] + Array(fragment)
        try await offPool { try TcpBleTransport.sendAll(fd, frame) }
        locked { counts.writes += 1 }
    }

    func nextNotification(lockId: String) async throws -> Data {
        let fd = try socketOf(lockId)
        let data = try await offPool { () throws -> Data in
            let header = try TcpBleTransport.recvExactly(fd, 2)
            return Data(try TcpBleTransport.recvExactly(fd, Int(header[0]) << 8 | Int(header[1])))
        }
        locked { counts.notifications += 1 }
        return data
    }

    func disconnect(lockId: String) async {
        closeSocket(of: lockId)
    }

    private func socketOf(_ lockId: String) throws -> Int32 {
        guard let fd = locked({ sockets[lockId] }) else { throw BleFailure.Disconnected }
        return fd
    }

    /// shutdown() first, so that a read still blocked in nextNotification returns.
    private func closeSocket(of lockId: String) {
        let fd = locked { sockets.removeValue(forKey: lockId) }
        if let fd {
            shutdown(fd, Int32(SHUT_RDWR))
            Glibc.close(fd)
        }
    }

    private static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BleFailure.Disconnected }
            sent += n
        }
    }

    private static func recvExactly(_ fd: Int32, _ count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buffer[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BleFailure.Disconnected } // 0: the lock hung up
            got += n
        }
        return buffer
    }

    private func offPool<T>(_ body: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// A fresh directory, removed with its contents when the test process exits.
func temporaryDirectory(_ prefix: String) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    madeDirectories.add(url)
    return url.path
}

private final class MadeDirectories: @unchecked Sendable {
    private let lock = NSLock()
    private var urls: [URL] = []

    init() {
        atexit { madeDirectories.removeAll() }
    }

    func add(_ url: URL) {
        lock.lock()
        defer { lock.unlock() }
        urls.append(url)
    }

    func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        for url in urls { try? FileManager.default.removeItem(at: url) }
        urls = []
    }
}

private let madeDirectories = MadeDirectories()
