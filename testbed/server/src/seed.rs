//! "1800 Main St" from the seeds, created through the manager API exactly as DOOR OS would:
//! for the demo, the client tests and benchmarks. Each lock gets a fresh P-256 key whose
//! secret is returned, so reference locks can be stood up for the doors.

use p256::ecdsa::SigningKey;
use reqwest::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::extract::to_b64;
use crate::model::*;
use crate::units::UnitJson;

pub const PASSWORD: &str = "correct horse battery";

/// How big a property to make; the seed's is 200 apartments and 20 amenities.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub apartments: usize,
    pub amenities: usize,
}

impl Scale {
    pub const SEED: Scale = Scale {
        apartments: 200,
        amenities: 20,
    };
    pub const SMALL: Scale = Scale {
        apartments: 4,
        amenities: 3,
    };
}

#[derive(Debug, Clone)]
pub struct SeededDoor {
    pub door: DoorJson,
    /// The lock's P-256 secret scalar, for a reference lock.
    pub lock_secret: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct SeededPerson {
    pub person: PersonJson,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct Seeded {
    pub property: PropertyJson,
    pub manager_key: String,
    pub doors: Vec<SeededDoor>,
    /// Alice (resident of the first apartment), Bob (resident of the second), Max
    /// (maintenance, 24/7), Lea (leasing, business hours), Victor (vendor).
    pub people: Vec<SeededPerson>,
}

impl Seeded {
    pub fn door(&self, name: &str) -> &SeededDoor {
        self.doors
            .iter()
            .find(|d| d.door.name == name)
            .unwrap_or_else(|| panic!("no door {name}"))
    }

    pub fn person(&self, name: &str) -> &SeededPerson {
        self.people
            .iter()
            .find(|p| p.person.name == name)
            .unwrap_or_else(|| panic!("no person {name}"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{what}: {detail}")]
    Request { what: String, detail: String },
}

struct Api<'a> {
    http: Client,
    base: &'a str,
    token: String,
}

impl Api<'_> {
    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, SeedError> {
        self.send(reqwest::Method::POST, path, body).await
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<T, SeedError> {
        let fail = |detail: String| SeedError::Request {
            what: format!("{method} {path}"),
            detail,
        };
        let resp = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("{status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
    }
}

fn weekly(days: &[&str], start: &str, end: &str) -> ScheduleJson {
    ScheduleJson {
        windows: vec![WindowJson {
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.into(),
            end: end.into(),
        }],
        not_before: None,
        not_after: None,
    }
}

const MON_FRI: &[&str] = &["mon", "tue", "wed", "thu", "fri"];
const EVERY_DAY: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const AMENITY_NAMES: [&str; 20] = [
    "Pool",
    "Gym",
    "Roof Deck",
    "Sauna",
    "Yoga Studio",
    "Lounge",
    "Game Room",
    "Theater",
    "Business Center",
    "Library",
    "Kids Room",
    "Pet Spa",
    "Bike Room",
    "Courtyard",
    "Grill Area",
    "Wine Room",
    "Music Room",
    "Co-working",
    "Party Room",
    "Spa",
];

/// Creates the property on the server at `base` with the server's admin token.
pub async fn main_st(base: &str, admin_token: &str, scale: Scale) -> Result<Seeded, SeedError> {
    // reqwest's TLS needs a process-wide crypto provider; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut api = Api {
        http: Client::new(),
        base,
        token: admin_token.to_owned(),
    };
    let created: CreatedProperty = api
        .post(
            "/v1/properties",
            &NewProperty {
                name: "1800 Main St".into(),
                time_zone: "America/New_York".into(),
            },
        )
        .await?;
    api.token = created.manager_key.clone();
    let pid = created.property.id.clone();
    let p = |rest: &str| format!("/v1/properties/{pid}{rest}");

    let mut doors = Vec::new();
    let add_door = async |name: String, online: bool| -> Result<SeededDoor, SeedError> {
        let lock = SigningKey::random(&mut rand::rngs::OsRng);
        let req = NewDoor {
            name,
            online,
            lock_id: None,
            lock_public_key: to_b64(lock.verifying_key().to_encoded_point(true).as_bytes()),
            keypad: true,
        };
        let door: DoorJson = api.post(&p("/doors"), &req).await?;
        Ok(SeededDoor {
            door,
            lock_secret: lock.to_bytes().into(),
        })
    };
    let mut entrances = Vec::new();
    for name in ["Lobby", "Garage Gate"] {
        entrances.push(add_door(name.into(), false).await?);
    }
    let service = add_door("Loading Dock".into(), false).await?;
    let office = add_door("Leasing Office".into(), true).await?;
    let mut amenities = Vec::new();
    for name in AMENITY_NAMES.iter().cycle().take(scale.amenities) {
        amenities.push(add_door((*name).into(), false).await?);
    }
    let mut apartments = Vec::new();
    for i in 0..scale.apartments {
        apartments.push(add_door(format!("Unit {}{:02}", 1 + i / 10, i % 10 + 1), false).await?);
    }
    doors.extend(entrances.iter().cloned());
    doors.push(service.clone());
    doors.push(office.clone());
    doors.extend(amenities.iter().cloned());
    doors.extend(apartments.iter().cloned());

    let entry = |d: &SeededDoor, doorcodes: bool, schedule: Option<ScheduleJson>| KeyDoorJson {
        door_id: d.door.id.clone(),
        doorcodes,
        schedule,
    };
    let key = |name: &str, doors: Vec<KeyDoorJson>| NewKey {
        name: name.into(),
        doors,
    };
    let vacant = apartments
        .len()
        .saturating_sub((apartments.len() / 10).max(1));
    let (occupied, vacant) = apartments.split_at(vacant);
    let amenity_hours = |d: &SeededDoor| {
        if d.door.name == "Pool" {
            weekly(MON_FRI, "09:00", "17:00")
        } else {
            weekly(EVERY_DAY, "06:00", "22:00")
        }
    };
    let business = weekly(MON_FRI, "08:00", "18:00");
    let staff_doors: Vec<&SeededDoor> = entrances
        .iter()
        .chain([&service, &office])
        .chain(&amenities)
        .chain(vacant)
        .collect();

    let amenities_key: KeyJson = api
        .post(
            &p("/keys"),
            &key(
                "Amenities",
                amenities
                    .iter()
                    .map(|d| entry(d, false, Some(amenity_hours(d))))
                    .collect(),
            ),
        )
        .await?;
    let residences: KeyJson = api
        .post(
            &p("/keys"),
            &key(
                "Residences",
                entrances.iter().map(|d| entry(d, true, None)).collect(),
            ),
        )
        .await?;
    let all_access: KeyJson = api
        .post(
            &p("/keys"),
            &key(
                "Employee All Access 24/7",
                staff_doors.iter().map(|d| entry(d, true, None)).collect(),
            ),
        )
        .await?;
    let business_hours: KeyJson = api
        .post(
            &p("/keys"),
            &key(
                "Employee Business hours",
                staff_doors
                    .iter()
                    .map(|d| entry(d, false, Some(business.clone())))
                    .collect(),
            ),
        )
        .await?;
    let tour: KeyJson = api
        .post(
            &p("/keys"),
            &key(
                "Tour",
                vacant.iter().map(|d| entry(d, false, None)).collect(),
            ),
        )
        .await?;
    let vendors: KeyJson = api
        .post(
            &p("/keys"),
            &key(
                "Vendors",
                entrances
                    .iter()
                    .chain([&service])
                    .chain(&amenities)
                    .map(|d| entry(d, false, Some(business.clone())))
                    .collect(),
            ),
        )
        .await?;

    let mut people = Vec::new();
    let mut person = async |name: &str,
                            role: &str,
                            email: &str,
                            keys: Vec<(&KeyJson, bool)>|
           -> Result<String, SeedError> {
        let req = NewPerson {
            name: name.into(),
            email: Some(email.into()),
            role: role.into(),
            password: Some(PASSWORD.into()),
        };
        let person: PersonJson = api.post(&p("/people"), &req).await?;
        for (k, may_share) in keys {
            let _: AssignmentJson = api
                .post(
                    &p(&format!("/people/{}/keys", person.id)),
                    &NewAssignment {
                        key_id: k.id.clone(),
                        may_share,
                    },
                )
                .await?;
        }
        let id = person.id.clone();
        people.push(SeededPerson {
            person,
            email: email.into(),
        });
        Ok(id)
    };
    for (i, resident) in ["Alice", "Bob"]
        .into_iter()
        .enumerate()
        .take(occupied.len())
    {
        let unit = &occupied[i];
        let home: KeyJson = api
            .post(
                &p("/keys"),
                &key(
                    &format!("Apartment {}", unit.door.name),
                    vec![entry(unit, true, None)],
                ),
            )
            .await?;
        let email = format!("{}@1800main.example", resident.to_lowercase());
        let resident_id = person(
            resident,
            "resident",
            &email,
            vec![(&home, true), (&amenities_key, false), (&residences, true)],
        )
        .await?;
        // The apartment is the resident's unit: its access log shows them every entry.
        let named = UnitJson {
            unit: Some(unit.door.name.clone()),
        };
        for path in [
            format!("/doors/{}/unit", unit.door.id),
            format!("/people/{resident_id}/unit"),
        ] {
            let _: UnitJson = api.send(reqwest::Method::PUT, &p(&path), &named).await?;
        }
    }
    person(
        "Max",
        "staff",
        "max@1800main.example",
        vec![(&all_access, false), (&tour, true)],
    )
    .await?;
    person(
        "Lea",
        "staff",
        "lea@1800main.example",
        vec![(&business_hours, false), (&tour, true)],
    )
    .await?;
    person(
        "Victor",
        "vendor",
        "victor@1800main.example",
        vec![(&vendors, false)],
    )
    .await?;

    Ok(Seeded {
        property: created.property,
        manager_key: created.manager_key,
        doors,
        people,
    })
}
