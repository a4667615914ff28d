//! Faults between the phone and door-server: a proxy in front of the real server answers
//! with 500s, drops connections, never answers, cuts bodies short, or lets the server do the
//! work and then loses the answer. The client retries what is safe to retry, gives a typed
//! error for the rest, never does a request's work twice, and leaves its cache as it was.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use door_core::DoorError;
use door_server::seed::PASSWORD;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Answer with this status and an empty body; the server never sees the request.
    Status(u16),
    /// Close the connection without an answer.
    Drop,
    /// Never answer.
    Hang,
    /// Forward, then close halfway through the answer's body.
    Truncate,
    /// Forward (the server does the work), then never pass the answer on.
    ForwardThenHang,
}

/// One HTTP/1.1 message off the wire: the head as read, and the body per content-length.
async fn read_message(r: &mut (impl AsyncBufReadExt + Unpin)) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    r.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

/// Serves each request per the next planned fault; with none planned, passes it on.
async fn proxy(listener: TcpListener, upstream: SocketAddr, plan: Arc<Mutex<VecDeque<Fault>>>) {
    while let Ok((phone, _)) = listener.accept().await {
        let plan = plan.clone();
        tokio::spawn(async move {
            let (rx, mut tx) = phone.into_split();
            let mut rx = BufReader::new(rx);
            while let Some((head, body)) = read_message(&mut rx).await {
                let fault = plan.lock().unwrap().pop_front();
                let answer = match fault {
                    Some(Fault::Status(code)) => {
                        format!("HTTP/1.1 {code} Fault\r\ncontent-length: 0\r\n\r\n").into_bytes()
                    }
                    Some(Fault::Drop) => return,
                    Some(Fault::Hang) => return std::future::pending().await,
                    None | Some(Fault::Truncate) | Some(Fault::ForwardThenHang) => {
                        let mut server =
                            BufReader::new(TcpStream::connect(upstream).await.unwrap());
                        server.write_all(head.as_bytes()).await.unwrap();
                        server.write_all(&body).await.unwrap();
                        let (head, body) = read_message(&mut server).await.unwrap();
                        match fault {
                            Some(Fault::ForwardThenHang) => return std::future::pending().await,
                            Some(Fault::Truncate) => {
                                let _ = tx.write_all(head.as_bytes()).await;
                                let _ = tx.write_all(&body[..body.len() / 2]).await;
                                return;
                            }
                            _ => [head.into_bytes(), body].concat(),
                        }
                    }
                };
                if tx.write_all(&answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

struct Faulty {
    url: String,
    plan: Arc<Mutex<VecDeque<Fault>>>,
}

impl Faulty {
    async fn start(server: &door_server::ServerHandle) -> Faulty {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let plan = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(proxy(listener, server.addr, plan.clone()));
        Faulty { url, plan }
    }

    fn plan(&self, faults: &[Fault]) {
        *self.plan.lock().unwrap() = faults.iter().copied().collect();
    }

    fn unused(&self) -> usize {
        self.plan.lock().unwrap().len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_faults_are_retried_when_safe_and_never_do_work_twice() {
    let mut w = World::start().await;
    let faulty = Faulty::start(&w.server).await;
    let (alice, _, _) = w.client(&faulty.url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    let doors = alice.doors().unwrap();

    // A refresh (GETs) rides out a 500, a dropped connection and a silent server: three
    // attempts per request, with backoff.
    for faults in [
        &[Fault::Status(500), Fault::Status(503)][..],
        &[Fault::Drop, Fault::Status(502)],
        &[Fault::Hang],
    ] {
        faulty.plan(faults);
        alice.refresh().await.unwrap();
        assert_eq!(faulty.unused(), 0, "{faults:?} were not all met");
        assert_eq!(alice.doors().unwrap(), doors);
    }

    // Past the retries, a typed error, and the cache as it was.
    faulty.plan(&[Fault::Status(500); 3]);
    assert!(matches!(
        alice.refresh().await,
        Err(DoorError::Server { .. })
    ));
    faulty.plan(&[Fault::Truncate]);
    assert!(matches!(
        alice.refresh().await,
        Err(DoorError::Server { .. })
    ));
    assert_eq!(alice.doors().unwrap(), doors);

    // A POST is not repeated after a 500 or a lost answer: the server may have done the work.
    let lobby = w.door_id("Lobby");
    let now = std::time::UNIX_EPOCH + Duration::from_secs(w.clock.now() as u64);
    let invite = |alice: &Arc<door_core::DoorClient>| {
        let alice = alice.clone();
        let lobby = lobby.clone();
        async move {
            alice
                .invite_guest(
                    vec![lobby],
                    "+1 555 0199".into(),
                    now,
                    now + Duration::from_secs(86_400),
                    vec![],
                )
                .await
        }
    };
    faulty.plan(&[Fault::Status(500)]);
    assert!(matches!(
        invite(&alice).await,
        Err(DoorError::Server { .. })
    ));
    assert!(alice.guests().await.unwrap().is_empty());
    faulty.plan(&[Fault::ForwardThenHang]);
    assert!(matches!(invite(&alice).await, Err(DoorError::Timeout)));
    assert_eq!(
        alice.guests().await.unwrap().len(),
        1,
        "the invite the server made is there once, not once per attempt"
    );
}
