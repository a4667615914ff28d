// The thin Swift face of door-core (Swift 6 language mode): the generated DoorClient, with the
// core's events as an AsyncStream instead of a listener object.
@_exported import DoorCoreBindings

/// Owns a `DoorClient` and the `EventListener` it was built with. Read `events` with
/// `for await` (one reader: it is an AsyncStream); use `client` for everything else.
public final class DoorCoreClient: Sendable {
    public let client: DoorClient
    /// Every event of this client, in order; the newest 256 are kept until read.
    public let events: AsyncStream<DoorEvent>
    private let continuation: AsyncStream<DoorEvent>.Continuation

    public init(config: ClientConfig, signer: DeviceSigner?, ble: BleTransport?) throws {
        let (events, continuation) = Self.makeStream()
        self.events = events
        self.continuation = continuation
        client = try DoorClient(config: config, signer: signer, listener: StreamListener(continuation), ble: ble)
    }

    deinit {
        continuation.finish()
    }

    private static func makeStream() -> (AsyncStream<DoorEvent>, AsyncStream<DoorEvent>.Continuation) {
        var continuation: AsyncStream<DoorEvent>.Continuation?
        let stream = AsyncStream<DoorEvent>(bufferingPolicy: .bufferingNewest(256)) { continuation = $0 }
        return (stream, continuation!)
    }
}

/// Called on a core thread; an AsyncStream continuation may be yielded to from any thread.
private final class StreamListener: EventListener {
    let continuation: AsyncStream<DoorEvent>.Continuation
    init(_ continuation: AsyncStream<DoorEvent>.Continuation) { self.continuation = continuation }
    func onEvent(event: DoorEvent) { continuation.yield(event) }
}
