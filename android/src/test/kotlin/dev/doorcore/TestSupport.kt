package dev.doorcore

import com.sun.jna.Library
import com.sun.jna.Native
import dev.doorcore.ffi.BleFailure
import dev.doorcore.ffi.BleTransport
import dev.doorcore.ffi.DeviceSigner
import dev.doorcore.ffi.DoorEvent
import dev.doorcore.ffi.EventListener
import java.io.BufferedInputStream
import java.io.BufferedOutputStream
import java.io.BufferedReader
import java.io.DataInputStream
import java.io.DataOutputStream
import java.io.File
import java.io.IOException
import java.io.InputStreamReader
import java.math.BigInteger
import java.net.InetSocketAddress
import java.net.Socket
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/** A device key in the JDK's own ECDSA: a second P-256 implementation the core must accept. */
class JdkSigner : DeviceSigner {
    private val pair = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()
    private val calls = AtomicInteger()

    /** How many times the core asked this key to sign. */
    val signed: Int get() = calls.get()

    override fun publicKey(): ByteArray {
        val w = (pair.public as ECPublicKey).w
        return byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY)
    }

    // SHA256withECDSA answers in DER; the core must take it as it comes.
    override fun sign(message: ByteArray): ByteArray {
        calls.incrementAndGet()
        return Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(message)
            sign()
        }
    }

    fun verifyRaw(message: ByteArray, raw: ByteArray): Boolean =
        Signature.getInstance("SHA256withECDSAinP1363Format").run {
            initVerify(pair.public)
            update(message)
            verify(raw)
        }

    private fun fixed32(n: BigInteger): ByteArray = n.toByteArray().takeLast(32).toByteArray().let { ByteArray(32 - it.size) + it }
}

/** Collects the core's events (delivered on a core thread). */
class EventLog : EventListener {
    val events = CopyOnWriteArrayList<DoorEvent>()

    override fun onEvent(event: DoorEvent) {
        events.add(event)
    }

    /** Waits up to [timeoutMs] for an event matching [predicate]. */
    fun await(timeoutMs: Long = 5_000, predicate: (DoorEvent) -> Boolean): DoorEvent? {
        val end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
        while (System.nanoTime() < end) {
            events.firstOrNull(predicate)?.let { return it }
            Thread.sleep(10)
        }
        return events.firstOrNull(predicate)
    }
}

/**
 * Points the core's own radio (btleplug -> libdbus) in this JVM at the fake BlueZ of the
 * testbed started last, so that a client built without a `BleTransport` unlocks as on a phone
 * whose app writes no BLE code.
 *
 * libdbus reads DBUS_SYSTEM_BUS_ADDRESS once per process, at its first connection, and keeps
 * the address for good, while every testbed's fake BlueZ has a bus socket of its own. So this
 * process gets one address that never changes, a symlink in a directory of its own, put into
 * the C environment with libc's setenv (System.getenv is a Java copy libdbus never sees)
 * before any test opens D-Bus; each testbed repoints the link at its bus socket. Each new
 * client opens a new D-Bus connection through the link, so it reaches the testbed alive now.
 * (Exporting the variable from scripts/test-kotlin would need the socket path before the
 * testbed exists, and would not hold for a test run from elsewhere.) Testbeds of one JVM run
 * one after another, as JUnit runs the tests.
 */
object CoreRadio {
    internal interface LibC : Library {
        fun setenv(name: String, value: String, overwrite: Int): Int
    }

    private val link: Path by lazy {
        val path = tempDir("door-bus").toPath().resolve("system_bus_socket")
        val libc = Native.load("c", LibC::class.java)
        check(libc.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=$path", 1) == 0) { "setenv failed" }
        path
    }

    /** Repoints this process's system bus at `bus` ("unix:path=..."), atomically. */
    @Synchronized
    fun pointAt(bus: String) {
        val socket = Path.of(bus.removePrefix("unix:path=").substringBefore(','))
        val next = link.resolveSibling("next")
        Files.deleteIfExists(next)
        Files.createSymbolicLink(next, socket)
        Files.move(next, link, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
    }
}

/**
 * An app's BLE stack over the testbed's TCP framing (cli/README.md): one TCP connection is one
 * BLE connection; the phone first sends the lock id and "\n"; every write and every
 * notification is a u16 big-endian length and the bytes.
 */
class TcpBleTransport(private val host: String, private val port: Int) : BleTransport {
    private class Link(val socket: Socket) {
        val input = DataInputStream(BufferedInputStream(socket.getInputStream()))
        val output = DataOutputStream(BufferedOutputStream(socket.getOutputStream()))
    }

    private val links = ConcurrentHashMap<String, Link>()
    val connections = AtomicInteger()
    val writes = AtomicInteger()
    val notifications = AtomicInteger()

    override suspend fun connect(lockId: String, timeoutMs: ULong): UShort = withContext(Dispatchers.IO) {
        links.remove(lockId)?.socket?.close()
        val socket = Socket()
        try {
            socket.tcpNoDelay = true
            val timeout = if (timeoutMs == 0uL) 10_000 else timeoutMs.coerceAtMost(Int.MAX_VALUE.toULong()).toInt()
            socket.connect(InetSocketAddress(host, port), timeout)
            val link = Link(socket)
            link.output.write("$lockId\n".toByteArray(Charsets.US_ASCII))
            link.output.flush()
            links[lockId] = link
        } catch (e: IOException) {
            socket.close()
            throw BleFailure.NotInRange()
        }
        connections.incrementAndGet()
        MTU
    }

    override suspend fun write(lockId: String, fragment: ByteArray) = withContext(Dispatchers.IO) {
        val link = links[lockId] ?: throw BleFailure.Disconnected()
        try {
            synchronized(link.output) {
                link.output.writeShort(fragment.size)
                link.output.write(fragment)
                link.output.flush()
            }
            writes.incrementAndGet()
            Unit
        } catch (e: IOException) {
            throw BleFailure.Disconnected()
        }
    }

    override suspend fun nextNotification(lockId: String): ByteArray = withContext(Dispatchers.IO) {
        val link = links[lockId] ?: throw BleFailure.Disconnected()
        try {
            val size = link.input.readUnsignedShort()
            ByteArray(size).also {
                link.input.readFully(it)
                notifications.incrementAndGet()
            }
        } catch (e: IOException) { // EOF included: the lock hung up
            throw BleFailure.Disconnected()
        }
    }

    // Closing the socket also ends a read still blocked in nextNotification.
    override suspend fun disconnect(lockId: String) = withContext(Dispatchers.IO) {
        links.remove(lockId)?.socket?.close()
        Unit
    }

    companion object {
        val MTU: UShort = 247u
    }
}

/**
 * `door testbed --json`: door-server and a reference lock for every door, until stdin closes.
 * Its locks are reachable through the core's own radio (the fake BlueZ at `bluezBus`, which
 * `start` points [CoreRadio] at) and over TCP at `lockPort` ([TcpBleTransport]).
 */
class Testbed private constructor(private val process: Process, json: Map<String, Any?>) : AutoCloseable {
    data class PersonInfo(val name: String, val email: String, val password: String)
    data class DoorInfo(val id: String, val name: String, val lockId: String)

    /** The testbed's OpenID Connect issuer and a ready ID token it signed for [name]. */
    data class OidcInfo(val issuer: String, val audience: String, val idToken: String, val nonce: String, val email: String, val name: String)

    val serverUrl = json["server_url"] as String
    val lockPort = (json["lock_port"] as Number).toInt()
    val bluezBus = json["bluez_bus"] as String?
    val timeZone = json["time_zone"] as String

    @Suppress("UNCHECKED_CAST")
    val people = (json["people"] as List<Map<String, Any?>>).map {
        PersonInfo(it["name"] as String, it["email"] as String, it["password"] as String)
    }

    @Suppress("UNCHECKED_CAST")
    val doors = (json["doors"] as List<Map<String, Any?>>).map {
        DoorInfo(it["id"] as String, it["name"] as String, it["lock_id"] as String)
    }

    @Suppress("UNCHECKED_CAST")
    val oidc = (json["oidc"] as Map<String, Any?>).let {
        OidcInfo(
            it["issuer"] as String, it["audience"] as String, it["id_token"] as String,
            it["nonce"] as String, it["email"] as String, it["name"] as String,
        )
    }

    fun person(name: String) = people.single { it.name == name }
    fun door(name: String) = doors.single { it.name == name }

    /** Closing stdin ends the testbed. */
    override fun close() {
        runCatching { process.outputStream.close() }
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly()
    }

    companion object {
        /** The `door` binary: -Ddoor.bin (scripts/test-kotlin sets it), else DOOR_BIN. */
        fun doorBinary(): String =
            System.getProperty("door.bin") ?: System.getenv("DOOR_BIN") ?: error("set -Ddoor.bin or DOOR_BIN to the door binary")

        fun start(): Testbed {
            val process = ProcessBuilder(doorBinary(), "testbed", "--json")
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start()
            val line = BufferedReader(InputStreamReader(process.inputStream, Charsets.UTF_8)).readLine()
            if (line == null) {
                process.destroyForcibly()
                error("door testbed exited without its JSON line (status ${process.waitFor()})")
            }
            @Suppress("UNCHECKED_CAST")
            return Testbed(process, MiniJson(line).parse() as Map<String, Any?>).also { bed ->
                bed.bluezBus?.let { CoreRadio.pointAt(it) }
            }
        }
    }
}

/** A fresh directory, removed with its contents when the JVM exits (deleteOnExit only takes empty ones). */
/** The core's live object count once the objects left to the garbage collector are freed. */
fun settledLiveObjects(): ULong {
    var last = dev.doorcore.ffi.liveObjects()
    repeat(50) {
        System.gc()
        Thread.sleep(20)
        val now = dev.doorcore.ffi.liveObjects()
        if (now == last) return now
        last = now
    }
    return last
}

/** Waits up to five seconds for the live object count to come back to [before]. */
fun awaitLiveObjects(before: ULong): ULong {
    val deadline = System.nanoTime() + 5_000_000_000L
    while (dev.doorcore.ffi.liveObjects() != before && System.nanoTime() < deadline) Thread.sleep(10)
    return dev.doorcore.ffi.liveObjects()
}

fun tempDir(prefix: String): File = Files.createTempDirectory(prefix).toFile().also { dir ->
    Runtime.getRuntime().addShutdownHook(Thread { dir.deleteRecursively() })
}

/** Just enough JSON for the testbed's line (objects, arrays, strings, numbers, literals). */
private class MiniJson(private val s: String) {
    private var i = 0

    fun parse(): Any? = value().also { ws(); require(i == s.length) { "trailing data at $i" } }

    private fun ws() {
        while (i < s.length && s[i].isWhitespace()) i++
    }

    private fun value(): Any? {
        ws()
        return when (s[i]) {
            '{' -> {
                i++
                val m = LinkedHashMap<String, Any?>()
                ws()
                if (s[i] == '}') { i++; return m }
                while (true) {
                    ws()
                    val k = string()
                    ws(); expect(':')
                    m[k] = value()
                    ws()
                    if (s[i] == ',') i++ else { expect('}'); return m }
                }
                @Suppress("UNREACHABLE_CODE") m
            }
            '[' -> {
                i++
                val l = ArrayList<Any?>()
                ws()
                if (s[i] == ']') { i++; return l }
                while (true) {
                    l.add(value())
                    ws()
                    if (s[i] == ',') i++ else { expect(']'); return l }
                }
                @Suppress("UNREACHABLE_CODE") l
            }
            '"' -> string()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> {
                val start = i
                while (i < s.length && (s[i].isDigit() || s[i] in "+-.eE")) i++
                s.substring(start, i).toDouble()
            }
        }
    }

    private fun literal(word: String, v: Any?): Any? {
        require(s.startsWith(word, i)) { "bad literal at $i" }
        i += word.length
        return v
    }

    private fun expect(c: Char) {
        require(s[i] == c) { "expected '$c' at $i" }
        i++
    }

    private fun string(): String {
        expect('"')
        val b = StringBuilder()
        while (s[i] != '"') {
            if (s[i] == '\\') {
                i++
                when (val e = s[i]) {
                    'n' -> b.append('\n')
                    't' -> b.append('\t')
                    'r' -> b.append('\r')
                    'b' -> b.append('\b')
                    'f' -> b.append('\u000c')
                    'u' -> { b.append(s.substring(i + 1, i + 5).toInt(16).toChar()); i += 4 }
                    else -> b.append(e)
                }
            } else {
                b.append(s[i])
            }
            i++
        }
        i++
        return b.toString()
    }
}
