//! A BLE link carried over TCP, both ends: the app test suites (Kotlin, Swift) and
//! `door lock-sim --tcp` talk to reference locks through it where there is no radio.
//!
//! The framing, in full:
//!
//! 1. The phone opens a TCP connection and sends the lock's id, 32 lowercase hex digits,
//!    then `"\n"`. One TCP connection is one BLE connection: the lock starts a fresh session.
//!    The server closes the connection at once when it has no lock of that id.
//! 2. Each write of the phone to the lock's characteristic is one frame: its length as an
//!    unsigned 16-bit big-endian integer, then that many bytes.
//! 3. Each notification of the lock comes back the same way.
//!
//! The link's ATT MTU is [`MTU`] (247): a frame carries at most 244 bytes, as over BLE with
//! data length extension. The bytes are exactly those of the GATT characteristic
//! (door-protocol's fragments), so a transport written against this framing exercises the
//! same code as a BLE stack.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use door_core::ble::{BleError, Connection, LockTarget, Transport};
use door_lock::Lock;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The ATT MTU both ends assume.
pub const MTU: usize = 247;

/// The longest lock-id line a server reads before giving up on a client.
const MAX_LINE: usize = 64;

async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let len = r.read_u16().await?;
    let mut buf = vec![0; usize::from(len)];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<W: AsyncWriteExt + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame over 65535 bytes")
    })?;
    let mut frame = Vec::with_capacity(2 + bytes.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(bytes);
    w.write_all(&frame).await
}

/// The lock end: serves `locks` (by lock id, lowercase hex) on `listener` until the task is
/// dropped. Each connection gets its own lock session.
pub async fn serve(listener: TcpListener, locks: Arc<HashMap<String, Lock>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let locks = locks.clone();
        tokio::spawn(async move {
            // A client that misbehaves loses its connection; the lock and the server go on.
            let _ = serve_one(stream, &locks).await;
        });
    }
}

async fn serve_one(stream: TcpStream, locks: &HashMap<String, Lock>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = Vec::new();
    (&mut read)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    let id = String::from_utf8_lossy(&line).trim().to_ascii_lowercase();
    let Some(lock) = locks.get(&id) else {
        return Ok(());
    };
    let mut session = lock.connect();
    loop {
        let fragment = match read_frame(&mut read).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        // A lock that cannot persist its decision must not answer (see door_lock): the
        // connection drops instead, and the phone reports a broken exchange.
        let answers = session
            .on_write(&fragment, MTU as u16)
            .map_err(std::io::Error::other)?;
        for answer in answers {
            write_frame(&mut write, &answer).await?;
        }
    }
}

/// The phone end: a door-core transport that reaches locks through a TCP server speaking
/// the framing above (`door testbed`, `door lock-sim --tcp`).
pub struct TcpTransport {
    addr: SocketAddr,
}

impl TcpTransport {
    pub fn new(addr: SocketAddr) -> TcpTransport {
        TcpTransport { addr }
    }
}

#[async_trait]
impl Transport for TcpTransport {
    async fn connect(
        &self,
        target: &LockTarget,
        timeout: Duration,
    ) -> Result<Box<dyn Connection>, BleError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(self.addr)).await {
            Err(_) => return Err(BleError::NotInRange),
            // Nobody listening is a lock that is not there.
            Ok(Err(_)) => return Err(BleError::NotInRange),
            Ok(Ok(s)) => s,
        };
        stream
            .set_nodelay(true)
            .map_err(|e| BleError::Other(e.to_string()))?;
        let (read, mut write) = stream.into_split();
        write
            .write_all(format!("{}\n", target.lock_id.to_ascii_lowercase()).as_bytes())
            .await
            .map_err(|_| BleError::Disconnected)?;
        Ok(Box::new(TcpConnection { read, write }))
    }
}

struct TcpConnection {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
}

#[async_trait]
impl Connection for TcpConnection {
    fn mtu(&self) -> usize {
        MTU
    }

    async fn write(&mut self, fragment: &[u8]) -> Result<(), BleError> {
        write_frame(&mut self.write, fragment)
            .await
            .map_err(|_| BleError::Disconnected)
    }

    async fn notification(&mut self) -> Result<Vec<u8>, BleError> {
        read_frame(&mut self.read)
            .await
            .map_err(|_| BleError::Disconnected)
    }

    async fn close(&mut self) {
        let _ = self.write.shutdown().await;
    }
}
