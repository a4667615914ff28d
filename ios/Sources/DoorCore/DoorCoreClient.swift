// The thin Swift face of door-core (Swift 6 language mode): the generated DoorClient, with the
// core's events as an AsyncStream instead of a listener object.
@_exported import DoorCoreBindings

/// Owns a `DoorClient` and the `EventListener` it was built with. Read `events` or
/// `unlockEvents` with `for await` (one reader each: they are AsyncStreams); use `client` for
/// everything else. The core drives the phone's Bluetooth itself; pass a `BleTransport` only
/// if the app must own the radio.
public final class DoorCoreClient: Sendable {
    public let client: DoorClient
    /// Every event of this client, in order; the newest 256 are kept until read.
    public let events: AsyncStream<DoorEvent>
    /// The unlocks only (`DoorEvent.unlock`), tapped and hands-free alike: each reports
    /// `.started`, its progress, and one of `.succeeded`, `.failed` or `.cancelled`.
    public let unlockEvents: AsyncStream<DoorEvent>
    private let continuations: [AsyncStream<DoorEvent>.Continuation]

    /// Without `ble` the core drives the radio itself; pass one only if the app owns the radio.
    public init(config: ClientConfig, signer: DeviceSigner? = nil, ble: BleTransport? = nil) throws {
        let (events, all) = Self.makeStream()
        let (unlockEvents, unlocks) = Self.makeStream()
        self.events = events
        self.unlockEvents = unlockEvents
        continuations = [all, unlocks]
        client = try DoorClient(config: config, signer: signer, listener: StreamListener(all: all, unlocks: unlocks), ble: ble)
    }

    deinit {
        for continuation in continuations { continuation.finish() }
    }

    /// The doors stream (OpenDOOR `listenForLocks()`): the cached doors at once, then the doors
    /// again after every refresh, sign-in, sign-out or Door Sync, and when a door's decision
    /// changes with the time (the Pool opens at 09:00), until the reader stops (the watch ends
    /// when the stream is dropped or its Task cancelled). Each call is its own stream; a slow
    /// reader gets the newest list.
    public func doors() throws -> AsyncStream<[Door]> {
        var continuation: AsyncStream<[Door]>.Continuation?
        let stream = AsyncStream<[Door]>(bufferingPolicy: .bufferingNewest(1)) { continuation = $0 }
        let watch = try client.watchDoors(listener: DoorsStreamListener(continuation!))
        continuation!.onTermination = { _ in watch.cancel() }
        return stream
    }

    private static func makeStream() -> (AsyncStream<DoorEvent>, AsyncStream<DoorEvent>.Continuation) {
        var continuation: AsyncStream<DoorEvent>.Continuation?
        let stream = AsyncStream<DoorEvent>(bufferingPolicy: .bufferingNewest(256)) { continuation = $0 }
        return (stream, continuation!)
    }
}

/// Called on a core thread; an AsyncStream continuation may be yielded to from any thread.
private final class DoorsStreamListener: DoorsListener {
    let continuation: AsyncStream<[Door]>.Continuation
    init(_ continuation: AsyncStream<[Door]>.Continuation) { self.continuation = continuation }
    func onDoors(doors: [Door]) { continuation.yield(doors) }
}

/// Called on a core thread; an AsyncStream continuation may be yielded to from any thread.
private final class StreamListener: EventListener {
    let all: AsyncStream<DoorEvent>.Continuation
    let unlocks: AsyncStream<DoorEvent>.Continuation
    init(all: AsyncStream<DoorEvent>.Continuation, unlocks: AsyncStream<DoorEvent>.Continuation) {
        self.all = all
        self.unlocks = unlocks
    }
    func onEvent(event: DoorEvent) {
        all.yield(event)
        if case .unlock = event { unlocks.yield(event) }
    }
}

// UniFFI's Swift does not pass Task cancellation on to Rust: a cancelled Task's call would run
// to its end (up to its timeout). These wrappers hand the core a `Cancellation` and cancel it
// from the Task's cancellation handler, so cancelling the Task ends the call at once with
// `CancellationError`, as Swift code expects.
extension DoorCoreClient {
    /// Opens the door (see `DoorClient.unlock`); cancelling the Task stops the attempt.
    public func unlock(doorId: String, timeoutMs: UInt64 = 0) async throws -> UnlockReceipt {
        try await cancellable { try await self.client.unlock(doorId: doorId, timeoutMs: timeoutMs, cancellation: $0) }
    }

    /// "Sync this door" (see `DoorClient.syncDoor`); cancelling the Task stops the transfer,
    /// which resumes where it stopped at the next visit.
    public func syncDoor(doorId: String, timeoutMs: UInt64 = 0) async throws {
        try await cancellable { try await self.client.syncDoor(doorId: doorId, timeoutMs: timeoutMs, cancellation: $0) }
    }
}

extension DoorSchedule {
    /// The decision once it changes (see `waitForChange`); cancelling the Task ends the wait
    /// with `CancellationError`.
    public func nextChange(maxWaitMs: UInt64) async throws -> AccessDecision {
        let cancellation = Cancellation()
        let decision = await withTaskCancellationHandler {
            await waitForChange(maxWaitMs: maxWaitMs, cancellation: cancellation)
        } onCancel: {
            cancellation.cancel()
        }
        try Task.checkCancellation()
        return decision
    }
}

private func cancellable<T>(_ call: (Cancellation) async throws -> T) async throws -> T {
    let cancellation = Cancellation()
    do {
        return try await withTaskCancellationHandler {
            try await call(cancellation)
        } onCancel: {
            cancellation.cancel()
        }
    } catch DoorError.Cancelled {
        throw CancellationError()
    }
}
