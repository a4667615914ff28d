//! The resident's day, one step at a time. Each step does what an app (or DOOR OS, for the
//! seed) would do, checks what it expects, and says what happened in one line.
//!
//! Steps share the `Story`; one that needs what an earlier step failed to make is skipped.
//! To add a step: write `fn name(s: &mut Story) -> StepFuture<'_>` and put it in `STEPS`.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use door_core::{AccessDecision, DoorError, DoorEvent, GuestInvite, UnlockPhase};
use door_protocol::DoorcodeResult;
use door_server::seed::{self, Scale, PASSWORD};

use super::world::{LinkStats, Phone, World};
use crate::show;

/// Why a step did not behave as expected.
#[derive(Debug)]
pub enum StepError {
    /// It ran, and something was not as expected: what, and what came instead.
    Failed(String),
    /// It could not run: an earlier step did not make what it needs.
    Skipped(&'static str),
}

impl StepError {
    pub fn failed(e: impl std::fmt::Display) -> StepError {
        StepError::Failed(e.to_string())
    }
}

impl<E: std::error::Error> From<E> for StepError {
    fn from(e: E) -> StepError {
        StepError::Failed(e.to_string())
    }
}

/// A step's outcome: one line, and lines below it where a list says more.
pub struct Outcome {
    pub line: String,
    pub details: Vec<String>,
}

impl Outcome {
    fn line(line: impl Into<String>) -> Outcome {
        Outcome {
            line: line.into(),
            details: Vec::new(),
        }
    }
}

pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome, StepError>> + 'a>>;

pub struct Step {
    pub name: &'static str,
    pub run: for<'a> fn(&'a mut Story) -> StepFuture<'a>,
}

/// The day, in order. Door Sync lands later in two places, marked below.
pub const STEPS: &[Step] = &[
    Step {
        name: "start door-server",
        run: start_server,
    },
    Step {
        name: "seed 1800 Main St",
        run: seed_property,
    },
    Step {
        name: "start the locks",
        run: start_locks,
    },
    Step {
        name: "Alice signs in",
        run: sign_in,
    },
    Step {
        name: "Alice's doors",
        run: list_doors,
    },
    Step {
        name: "unlock the Lobby",
        run: unlock_lobby,
    },
    Step {
        name: "the Pool at night",
        run: pool_at_night,
    },
    Step {
        name: "doorcodes",
        run: doorcodes,
    },
    Step {
        name: "invite a guest",
        run: invite_guest,
    },
    Step {
        name: "the guest unlocks",
        run: guest_unlocks,
    },
    Step {
        name: "Alice revokes the guest",
        run: revoke_guest,
    },
    Step {
        name: "the revocation reaches the Lobby",
        run: revocation_reaches_lobby,
    },
    Step {
        name: "the guest is refused at the Lobby",
        run: guest_refused,
    },
    Step {
        name: "the guest's session ends",
        run: guest_session_ends,
    },
    Step {
        name: "the audit records reach the server",
        run: audit_home,
    },
    Step {
        name: "a dog walker's doorcode",
        run: dog_walker_doorcode,
    },
];

/// What the steps share: the world, the phones and the invite.
pub struct Story {
    pub world: World,
    alice: Option<Phone>,
    guest: Option<Phone>,
    bob: Option<Phone>,
    invite: Option<GuestInvite>,
}

impl Story {
    pub fn new(world: World) -> Story {
        Story {
            world,
            alice: None,
            guest: None,
            bob: None,
            invite: None,
        }
    }

    fn alice(&self) -> Result<&Phone, StepError> {
        self.alice
            .as_ref()
            .ok_or(StepError::Skipped("Alice did not sign in"))
    }

    fn guest(&self) -> Result<&Phone, StepError> {
        self.guest
            .as_ref()
            .ok_or(StepError::Skipped("the guest did not redeem the invite"))
    }

    fn invite(&self) -> Result<&GuestInvite, StepError> {
        self.invite
            .as_ref()
            .ok_or(StepError::Skipped("no guest was invited"))
    }

    /// The simulated time in the property's zone.
    pub fn sim_now(&self) -> chrono::DateTime<chrono_tz::Tz> {
        self.world.local(self.world.clock.now())
    }

    /// `t` as a person in the property's zone says it, from the simulated now.
    fn when(&self, t: std::time::SystemTime) -> String {
        show::when(&self.world.zone, self.world.now(), t)
    }

    fn access(&self, d: &AccessDecision) -> String {
        show::access(&self.world.zone, self.world.now(), d)
    }
}

/// Fails the step with `msg` unless `cond` holds.
fn expect(cond: bool, msg: impl FnOnce() -> String) -> Result<(), StepError> {
    if cond {
        Ok(())
    } else {
        Err(StepError::Failed(msg()))
    }
}

/// The seven keys of the seeds' DOOR OS, with the apartment key made for each resident.
const KEY_NAMES: [&str; 8] = [
    "Amenities",
    "Apartment Unit 101",
    "Apartment Unit 102",
    "Employee All Access 24/7",
    "Employee Business hours",
    "Residences",
    "Tour",
    "Vendors",
];

/// Offline doors that get a reference lock: the story's, and a few of their neighbours.
const LOCKED_DOORS: [&str; 6] = [
    "Lobby",
    "Garage Gate",
    "Pool",
    "Gym",
    "Unit 101",
    "Unit 102",
];

/// Of Alice's doors, the ones the list shows.
const SHOWN_DOORS: [&str; 6] = [
    "Garage Gate",
    "Gym",
    "Lobby",
    "Pool",
    "Roof Deck",
    "Unit 101",
];

fn start_server(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let db = s.world.dir.path().join("door.sqlite");
        let server = door_server::start(
            "127.0.0.1:0".parse().expect("a valid address"),
            Some(&db),
            &s.world.admin_token,
            s.world.clock.f(),
        )
        .await?;
        let line = format!(
            "listening on {}, SQLite in a temporary directory",
            server.url()
        );
        s.world.server = Some(server);
        Ok(Outcome::line(line))
    })
}

fn seed_property(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let url = s.world.server()?.url();
        let scale = Scale::SEED;
        let seeded = seed::main_st(&url, &s.world.admin_token, scale).await?;
        let tz = seeded.property.time_zone.clone();
        s.world.seeded = Some(seeded);
        let doors = s.world.count("SELECT COUNT(*) FROM doors")?;
        let people = s.world.count("SELECT COUNT(*) FROM people")?;
        let keys = s
            .world
            .texts("SELECT name FROM keys WHERE kind = 'manager' ORDER BY name")?;
        let expected_doors = 4 + scale.apartments + scale.amenities;
        expect(doors == expected_doors as i64, || {
            format!("{doors} doors on the server, expected {expected_doors}")
        })?;
        expect(people == 5, || format!("{people} people, expected 5"))?;
        expect(keys == KEY_NAMES, || {
            format!("keys {keys:?}, expected {KEY_NAMES:?}")
        })?;
        expect(tz == s.world.zone.name(), || {
            format!("time zone {tz}, expected {}", s.world.zone.name())
        })?;
        Ok(Outcome::line(format!(
            "through the manager API: {doors} doors ({} apartments, {} amenities), {} keys, \
             {people} people, {tz}",
            scale.apartments,
            scale.amenities,
            keys.len()
        )))
    })
}

fn start_locks(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        for name in LOCKED_DOORS {
            s.world.add_lock(name)?;
        }
        Ok(Outcome::line(format!(
            "{} offline doors on the in-memory BLE link (MTU 247, 30 ms connection interval): {}",
            LOCKED_DOORS.len(),
            LOCKED_DOORS.join(", ")
        )))
    })
}

fn sign_in(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let alice = s.world.phone("alice")?;
        let me = alice
            .client
            .sign_in("alice@1800main.example".into(), PASSWORD.into())
            .await?;
        expect(
            (
                me.name.as_str(),
                me.role.as_str(),
                me.property_name.as_str(),
            ) == ("Alice", "resident", "1800 Main St"),
            || format!("signed in as {me:?}"),
        )?;
        let devices = s.world.count(
            "SELECT COUNT(*) FROM devices d JOIN people p ON p.id = d.person_id \
             WHERE p.email = 'alice@1800main.example'",
        )?;
        expect(devices == 1, || {
            format!("{devices} devices for Alice on the server, expected 1")
        })?;
        expect(alice.events.saw(&DoorEvent::DoorsChanged), || {
            "the app was not told that the doors arrived".into()
        })?;
        s.alice = Some(alice);
        Ok(Outcome::line(format!(
            "{}, {} at {}; device key registered with proof of possession",
            me.name, me.role, me.property_name
        )))
    })
}

fn list_doors(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let doors = s.alice()?.client.doors()?;
        let names: Vec<&str> = doors.iter().map(|d| d.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        expect(names == sorted, || format!("not sorted by name: {names:?}"))?;
        expect(doors.len() == 23, || {
            format!(
                "{} doors, expected 23 (2 entrances, 20 amenities, Unit 101)",
                doors.len()
            )
        })?;
        expect(
            !names.contains(&"Leasing Office") && !names.contains(&"Unit 102"),
            || format!("doors that are not Alice's: {names:?}"),
        )?;
        // "The Key name is not visible to residents": nowhere in what the app gets.
        let everything = format!("{doors:?}");
        let keys = s.world.texts("SELECT name FROM keys")?;
        if let Some(k) = keys.iter().find(|k| everything.contains(k.as_str())) {
            return Err(StepError::Failed(format!(
                "the key name {k:?} reached the app"
            )));
        }
        let state = |name: &str| {
            doors
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.access.clone())
        };
        let five_pm = s.world.now() + Duration::from_secs(7 * 3600);
        expect(
            state("Lobby") == Some(AccessDecision::Allowed { until: None }),
            || format!("Lobby: {:?}, expected open", state("Lobby")),
        )?;
        expect(
            state("Pool")
                == Some(AccessDecision::Allowed {
                    until: Some(five_pm),
                }),
            || format!("Pool: {:?}, expected open until 17:00", state("Pool")),
        )?;
        let mut out = Outcome::line(format!(
            "{} doors, sorted by name, no key name anywhere; {} of them:",
            doors.len(),
            SHOWN_DOORS.len()
        ));
        for d in doors
            .iter()
            .filter(|d| SHOWN_DOORS.contains(&d.name.as_str()))
        {
            out.details
                .push(format!("{:<12} {}", d.name, s.access(&d.access)));
        }
        Ok(out)
    })
}

/// The link's work during an unlock, for a person: "1 connection, 2 writes ↑ 431 B, …".
fn radio(d: &LinkStats) -> String {
    format!(
        "{} connection, {} write{} ↑ {} B, {} notification{} ↓ {} B, link open {}",
        d.connections,
        d.writes,
        if d.writes == 1 { "" } else { "s" },
        d.bytes_up,
        d.notifications,
        if d.notifications == 1 { "" } else { "s" },
        d.bytes_down,
        show::duration(d.open)
    )
}

fn unlock_lobby(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let lobby = s.world.door_id("Lobby")?;
        let lock = s.world.lock("Lobby")?.clone();
        let alice = s.alice()?;
        let before = s.world.link.stats();
        let started = Instant::now();
        let receipt = alice.client.unlock(lobby.clone(), 5000, None).await?;
        let took = started.elapsed();
        let radio_work = before.since(&s.world.link.stats());
        expect(receipt.lock_time == s.world.now(), || {
            format!("the lock's clock said {:?}", receipt.lock_time)
        })?;
        expect(receipt.attempts == 1 && radio_work.connections == 1, || {
            format!(
                "{} attempts, {} connections, expected one",
                receipt.attempts, radio_work.connections
            )
        })?;
        expect(
            lock.pending_audit() == 1 && receipt.pending_audit == 1,
            || {
                format!(
                    "the lock holds {} audit records, expected the unlock's one",
                    lock.pending_audit()
                )
            },
        )?;
        let stages: Vec<String> = alice
            .events
            .since(started)
            .into_iter()
            .filter_map(|(t, e)| match e {
                DoorEvent::Unlock { phase, .. } => Some(format!(
                    "{} at {}",
                    match phase {
                        UnlockPhase::Started => "started",
                        UnlockPhase::Connecting { .. } => "connecting",
                        UnlockPhase::Authorizing => "authorizing",
                        UnlockPhase::Succeeded { .. } => "opened",
                        UnlockPhase::Failed { .. } => "failed",
                        UnlockPhase::Cancelled => "cancelled",
                    },
                    show::duration(t)
                )),
                _ => None,
            })
            .collect();
        expect(stages.len() == 4 && stages[3].starts_with("opened"), || {
            format!("unlock events {stages:?}, expected started, connecting, authorizing, opened")
        })?;
        // The Door Sync riding along after the answer ends before the next step measures the
        // radio (on a loaded machine it outlasted the Pool's Out of Schedule answer).
        door_synced(alice, started, &lobby).await?;
        let lock_time = show::local(&s.world.zone, receipt.lock_time);
        Ok(Outcome {
            line: format!(
                "granted by the lock at {} by its own clock, {} after the tap",
                lock_time.format("%H:%M:%S"),
                show::duration(took)
            ),
            details: vec![
                format!("radio: {}", radio(&radio_work)),
                format!("app told: {}", stages.join(", ")),
                format!(
                    "the lock keeps a signed audit record of it ({} pending upload)",
                    receipt.pending_audit
                ),
            ],
        })
    })
}

fn pool_at_night(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let pool = s.world.door_id("Pool")?;
        s.world.set_time_of_day(23, 30);
        let alice = s.alice()?;
        let before = s.world.link.stats();
        let started = Instant::now();
        let answer = alice.client.unlock(pool, 5000, None).await;
        let took = started.elapsed();
        let radio_work = before.since(&s.world.link.stats());
        let nine_am = s.world.now() + Duration::from_secs(9 * 3600 + 1800);
        let next = match answer {
            Err(DoorError::OutOfSchedule { next_allowed }) => next_allowed,
            other => {
                return Err(StepError::Failed(format!(
                    "expected Out of Schedule, got {other:?}"
                )))
            }
        };
        expect(next == Some(nine_am), || {
            format!("opens {next:?}, expected Wednesday 09:00")
        })?;
        expect(radio_work == LinkStats::default(), || {
            format!("the radio was used: {}", radio(&radio_work))
        })?;
        let mut out = Outcome::line(format!(
            "Out of Schedule, opens {}: answered by the phone in {} with no radio work \
             (0 connections)",
            s.when(nine_am),
            show::duration(took)
        ));
        for d in alice
            .client
            .doors()?
            .iter()
            .filter(|d| ["Lobby", "Gym"].contains(&d.name.as_str()))
        {
            out.details
                .push(format!("{:<12} {}", d.name, s.access(&d.access)));
        }
        Ok(out)
    })
}

fn doorcodes(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let (lobby, pool) = (s.world.door_id("Lobby")?, s.world.door_id("Pool")?);
        let alice = &s.alice()?.client;
        let code = alice.doorcode(lobby)?;
        let Some(code) = code else {
            return Err(StepError::Failed("no doorcode for the Lobby".into()));
        };
        expect(
            code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
            || format!("Lobby doorcode {code:?}, expected 6 digits"),
        )?;
        let pool_code = alice.doorcode(pool)?;
        expect(pool_code.is_none(), || {
            format!("the Pool has a doorcode {pool_code:?}; its key enables none")
        })?;
        Ok(Outcome::line(format!(
            "Lobby keypad code {code}; the Pool has none (its key enables no doorcodes)"
        )))
    })
}

fn invite_guest(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let (lobby, unit) = (s.world.door_id("Lobby")?, s.world.door_id("Unit 101")?);
        let now = s.world.now();
        let until = now + Duration::from_secs(2 * 24 * 3600);
        let invite = s
            .alice()?
            .client
            .invite_guest(
                vec![lobby.clone(), unit.clone()],
                "+1 555 0100".into(),
                now,
                until,
                vec![],
            )
            .await?;
        let mut invited = invite.guest.door_ids.clone();
        invited.sort();
        let mut asked = vec![lobby, unit];
        asked.sort();
        expect(invited == asked, || {
            format!("the invite is for {invited:?}, expected {asked:?}")
        })?;
        let guest_keys = s
            .world
            .count("SELECT COUNT(*) FROM keys WHERE kind = 'guest'")?;
        let key_doors = s.world.texts(
            "SELECT d.name FROM keys k JOIN key_doors kd ON kd.key_id = k.id \
             JOIN doors d ON d.id = kd.door_id WHERE k.kind = 'guest' ORDER BY d.name",
        )?;
        expect(
            guest_keys == 2 && key_doors == ["Lobby", "Unit 101"],
            || format!("{guest_keys} guest keys on the server, for {key_doors:?}"),
        )?;
        let line = format!(
            "{} to the Lobby and Unit 101 until {}; the server made {guest_keys} guest keys, \
             one per door",
            invite.guest.contact,
            s.when(until)
        );
        s.invite = Some(invite);
        Ok(Outcome::line(line))
    })
}

fn guest_unlocks(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let lobby = s.world.door_id("Lobby")?;
        let token = s.invite()?.invite_token.clone();
        let guest = s.world.phone("guest")?;
        let who = guest.client.redeem_invite(token).await?;
        expect(who.role == "guest", || format!("redeemed as {who:?}"))?;
        let names: Vec<String> = guest.client.doors()?.into_iter().map(|d| d.name).collect();
        expect(names == ["Lobby", "Unit 101"], || {
            format!("the guest's doors are {names:?}")
        })?;
        let started = Instant::now();
        let receipt = guest.client.unlock(lobby, 5000, None).await?;
        let took = started.elapsed();
        expect(receipt.lock_time == s.world.now(), || {
            format!("the lock's clock said {:?}", receipt.lock_time)
        })?;
        s.guest = Some(guest);
        Ok(Outcome::line(format!(
            "the invite redeemed on a second phone ({}); the Lobby opens for the guest in {}",
            names.join(", "),
            show::duration(took)
        )))
    })
}

fn revoke_guest(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let id = s.invite()?.guest.id.clone();
        let alice = &s.alice()?.client;
        let guests = alice.guests().await?;
        expect(
            guests.len() == 1 && guests[0].id == id && guests[0].redeemed && !guests[0].revoked,
            || format!("Alice's guests: {guests:?}"),
        )?;
        let revoked = alice.revoke_guest(id).await?;
        expect(revoked.revoked, || format!("after revoking: {revoked:?}"))?;
        Ok(Outcome::line(format!(
            "Alice's guest list: {} (redeemed); revoked on the server",
            revoked.contact
        )))
    })
}

fn guest_session_ends(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let guest = s.guest()?;
        let answer = guest.client.refresh().await;
        expect(matches!(answer, Err(DoorError::SessionExpired)), || {
            format!("the guest's refresh gave {answer:?}, expected SessionExpired")
        })?;
        expect(guest.events.saw(&DoorEvent::SessionExpired), || {
            "the guest's app was not told the session ended".into()
        })?;
        expect(!guest.client.is_signed_in(), || {
            "the guest's phone still counts as signed in".into()
        })?;
        Ok(Outcome::line(
            "the guest's next refresh is refused: SessionExpired, and the app is told",
        ))
    })
}

/// Waits (bounded) for the phone's Door Sync with `door_id` to end, and returns its event.
/// A progress bar follows the bundle's bytes as the lock acknowledges them (stderr, and only
/// on a terminal, like the spinners).
async fn door_synced(phone: &Phone, since: Instant, door_id: &str) -> Result<DoorEvent, StepError> {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("    Door Sync {bar:30} {bytes}/{total_bytes}")
    {
        bar.set_style(style);
    }
    let result = wait_synced(phone, since, door_id, &bar).await;
    bar.finish_and_clear();
    result
}

async fn wait_synced(
    phone: &Phone,
    since: Instant,
    door_id: &str,
    bar: &indicatif::ProgressBar,
) -> Result<DoorEvent, StepError> {
    for _ in 0..400 {
        for (_, e) in phone.events.since(since) {
            if let DoorEvent::SyncProgress {
                door_id: d,
                done,
                total,
            } = e
            {
                if d == door_id {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            }
        }
        if let Some((_, e)) =
            phone.events.since(since).into_iter().find(
                |(_, e)| matches!(e, DoorEvent::DoorSynced { door_id: d, .. } if d == door_id),
            )
        {
            return Ok(e);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(StepError::failed(
        "the Door Sync after the unlock did not finish within 4 s",
    ))
}

fn revocation_reaches_lobby(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        s.invite()?;
        let lobby = s.world.door_id("Lobby")?;
        let before = s.world.lock("Lobby")?.sync_iteration();
        let bob = s.world.phone("bob")?;
        bob.client
            .sign_in("bob@1800main.example".into(), PASSWORD.into())
            .await?;
        let pending = bob.client.door(lobby.clone())?.sync_pending;
        expect(pending, || {
            "Bob's phone carries nothing for the Lobby".into()
        })?;
        let started = Instant::now();
        bob.client.unlock(lobby.clone(), 5000, None).await?;
        let opened = started.elapsed();
        let synced = door_synced(&bob, started, &lobby).await?;
        let took = started.elapsed();
        let DoorEvent::DoorSynced {
            applied,
            lock_iteration,
            audit_records,
            ..
        } = synced
        else {
            return Err(StepError::failed("no sync event"));
        };
        let after = s.world.lock("Lobby")?.sync_iteration();
        expect(applied && after > before, || {
            format!("the Lobby's sync iteration went {before} -> {after}")
        })?;
        let bytes = bob
            .events
            .since(started)
            .into_iter()
            .filter_map(|(_, e)| match e {
                DoorEvent::SyncProgress { total, .. } => Some(total),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        s.bob = Some(bob);
        Ok(Outcome::line(format!(
            "Bob (no relation to the guest) opens the Lobby in {}; after the answer his phone hands the lock the newest bundle ({bytes} B, iteration {before} -> {}) and brings {audit_records} audit records home, all done {} after the tap",
            show::duration(opened),
            lock_iteration.unwrap_or(after),
            show::duration(took)
        )))
    })
}

fn guest_refused(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let lobby = s.world.door_id("Lobby")?;
        let guest = s.guest()?;
        let answer = guest.client.unlock(lobby, 5000, None).await;
        expect(
            matches!(
                answer,
                Err(DoorError::Denied {
                    reason: door_core::UnlockDenial::Revoked
                })
            ),
            || format!("the guest's unlock gave {answer:?}, expected Denied {{ Revoked }}"),
        )?;
        Ok(Outcome::line(
            "the guest's phone, still offline with its old credential, is refused by the Lobby's lock: Revoked",
        ))
    })
}

fn audit_home(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let bob = s
            .bob
            .as_ref()
            .ok_or(StepError::Skipped("Bob did not sync the Lobby"))?;
        let lock_id = s.world.seeded()?.door("Lobby").door.lock_id.clone();
        // The id is 32 hex digits the server made: nothing to quote.
        let stored = s.world.count(&format!(
            "SELECT COUNT(*) FROM audit_records WHERE hex(lock_id) = upper('{lock_id}')"
        ))?;
        expect(stored >= 3, || {
            format!("the server holds {stored} of the Lobby's records")
        })?;
        let waiting = bob.client.pending_audit_records()?;
        expect(waiting == 0, || {
            format!("Bob's phone still holds {waiting} records")
        })?;
        Ok(Outcome::line(format!(
            "the server holds {stored} lock-signed records of the Lobby (Alice's, the guest's, Bob's unlocks and the sync), uploaded by Bob's phone; the lock frees them when the server's acknowledgement rides back in a later bundle"
        )))
    })
}

/// A guest without the app: a temporary doorcode for the Lobby's keypad, carried to the
/// offline lock by Alice's phone, and gone from the keypad after she revokes it.
fn dog_walker_doorcode(s: &mut Story) -> StepFuture<'_> {
    Box::pin(async move {
        let lobby = s.world.door_id("Lobby")?;
        let alice = &s.alice()?.client;
        let now = s.world.now();
        let until = now + Duration::from_secs(3 * 3600);
        let invite = alice
            .invite_guest(vec![], "dog walker".into(), now, until, vec![lobby.clone()])
            .await?;
        let [code] = &invite.doorcodes[..] else {
            return Err(StepError::Failed(format!(
                "the invite gave {} doorcodes",
                invite.doorcodes.len()
            )));
        };
        let keypad = s.world.lock("Lobby")?;
        let before = keypad.enter_doorcode(&code.code)?;
        expect(!matches!(before, DoorcodeResult::Granted { .. }), || {
            format!("the Lobby knew the new code before any sync: {before:?}")
        })?;
        alice.sync_door(lobby.clone(), 5000, None).await?;
        let typed = keypad.enter_doorcode(&code.code)?;
        expect(matches!(typed, DoorcodeResult::Granted { .. }), || {
            format!("the walker's code at the Lobby: {typed:?}")
        })?;
        alice.revoke_guest(invite.guest.id.clone()).await?;
        alice.sync_door(lobby, 5000, None).await?;
        let after = keypad.enter_doorcode(&code.code)?;
        expect(matches!(after, DoorcodeResult::Denied(_)), || {
            format!("the revoked code at the Lobby: {after:?}")
        })?;
        Ok(Outcome::line(format!(
            "Alice invites a dog walker without the app: code {} for the Lobby keypad until {}, shown to her once; her \"Sync this door\" carries it to the offline lock, the walker's code opens, and after she revokes it and syncs again the keypad refuses it",
            code.code,
            s.when(until)
        )))
    })
}
