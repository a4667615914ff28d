//! The seeds' "1800 Main St": 200 apartments, 20 amenities, the seven keys with their May
//! Share flags, and each persona's access at business hours, at night and on a weekend,
//! decided from the signed documents exactly as a lock would.

mod common;

use common::*;
use door_protocol::Decision;
use door_server::model::*;

const HOUR: i64 = 3600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eighteen_hundred_main_st() {
    let s = TestServer::start().await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;

    let mut entrances = Vec::new();
    for name in ["Lobby", "Garage Gate", "Side Entrance"] {
        entrances.push(m.door(&s, name, false).await);
    }
    let mut service = Vec::new();
    for name in ["Loading Dock", "Mail Room", "Trash Room"] {
        service.push(m.door(&s, name, false).await);
    }
    let office = m.door(&s, "Leasing Office", true).await;
    let amenity_names = [
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
    let mut amenities = Vec::new();
    for name in amenity_names {
        amenities.push(m.door(&s, name, false).await);
    }
    assert_eq!(amenities.len(), 20);
    let mut apartments = Vec::new();
    for floor in 1..=20 {
        for unit in ["A", "B", "C", "D", "E", "F", "G", "H", "J", "K"] {
            apartments.push(m.door(&s, &format!("Unit {floor}0{unit}"), false).await);
        }
    }
    assert_eq!(apartments.len(), 200);
    // The last ten units are vacant: the Tour key's, and the employees' keys include them.
    let (occupied, vacant) = apartments.split_at(190);

    // One apartment key per unit, given to its leaseholders with May Share on.
    let mut apartment_keys = Vec::new();
    for door in occupied.iter().take(3) {
        apartment_keys.push(
            m.key(
                &s,
                &format!("Apartment key {}", door.name),
                vec![door_entry(door, true, None)],
            )
            .await,
        );
    }
    let business = weekly(MON_FRI, "08:00", "18:00");
    let amenity_hours = weekly(EVERY_DAY, "06:00", "22:00");
    let pool_hours = weekly(MON_FRI, "09:00", "17:00");
    let amenities_key = m
        .key(
            &s,
            "Amenities",
            amenities
                .iter()
                .map(|d| {
                    door_entry(
                        d,
                        false,
                        Some(if d.name == "Pool" {
                            pool_hours.clone()
                        } else {
                            amenity_hours.clone()
                        }),
                    )
                })
                .collect(),
        )
        .await;
    let all_but_occupied: Vec<&DoorJson> = entrances
        .iter()
        .chain(&service)
        .chain([&office])
        .chain(&amenities)
        .chain(vacant)
        .collect();
    let employee_all = m
        .key(
            &s,
            "Employee All Access 24/7",
            all_but_occupied
                .iter()
                .map(|d| door_entry(d, true, None))
                .collect(),
        )
        .await;
    let employee_business = m
        .key(
            &s,
            "Employee Business hours",
            all_but_occupied
                .iter()
                .map(|d| door_entry(d, false, Some(business.clone())))
                .collect(),
        )
        .await;
    let residences = m
        .key(
            &s,
            "Residences",
            entrances
                .iter()
                .map(|d| door_entry(d, true, None))
                .collect(),
        )
        .await;
    let tour = m
        .key(
            &s,
            "Tour",
            vacant.iter().map(|d| door_entry(d, false, None)).collect(),
        )
        .await;
    let vendors = m
        .key(
            &s,
            "Vendors",
            entrances
                .iter()
                .chain(&service)
                .chain(&amenities)
                .map(|d| door_entry(d, false, Some(business.clone())))
                .collect(),
        )
        .await;

    let alice = m
        .person(
            &s,
            "Alice (Unit 10A)",
            "resident",
            Some("alice@example.com"),
        )
        .await;
    m.assign(&s, &alice, &apartment_keys[0], true).await;
    m.assign(&s, &alice, &amenities_key, false).await;
    m.assign(&s, &alice, &residences, true).await;
    let maintenance = m
        .person(&s, "Max (maintenance)", "staff", Some("max@example.com"))
        .await;
    m.assign(&s, &maintenance, &employee_all, false).await;
    m.assign(&s, &maintenance, &tour, true).await;
    let leasing = m
        .person(&s, "Lea (leasing)", "staff", Some("lea@example.com"))
        .await;
    m.assign(&s, &leasing, &employee_business, false).await;
    m.assign(&s, &leasing, &tour, true).await;
    let vendor = m
        .person(&s, "Victor (vendor)", "vendor", Some("victor@example.com"))
        .await;
    m.assign(&s, &vendor, &vendors, false).await;

    let tuesday_10am = TUESDAY_10AM_NY;
    let tuesday_night = TUESDAY_10AM_NY + 13 * HOUR + 30 * 60; // 23:30
    let saturday_noon = TUESDAY_10AM_NY + 4 * 24 * HOUR + 2 * HOUR;
    let wednesday_6am = TUESDAY_10AM_NY + 20 * HOUR;
    let wednesday_8am = TUESDAY_10AM_NY + 22 * HOUR;
    let monday_8am = TUESDAY_10AM_NY + 6 * 24 * HOUR - 2 * HOUR;
    let sunday_6am = TUESDAY_10AM_NY + 5 * 24 * HOUR - 4 * HOUR;
    let monday_9am = monday_8am + HOUR;

    let allowed = |d: Option<Decision>| matches!(d, Some(Decision::Allowed { .. }));
    let out_until = |d: Option<Decision>, next: i64| {
        assert_eq!(
            d,
            Some(Decision::OutOfSchedule {
                next_allowed: Some(next)
            })
        );
    };

    // Alice, resident: entries and her unit 24/7, amenities on their hours, no office.
    let phone = Phone::sign_in(&s, "alice@example.com").await;
    let doors = phone.doors(&s).await;
    let names: Vec<&str> = doors.doors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(doors.doors.len(), 3 + 1 + 20, "{names:?}");
    for t in [tuesday_10am, tuesday_night, saturday_noon] {
        assert!(allowed(Phone::decide(&doors, "Lobby", t)));
        assert!(allowed(Phone::decide(&doors, &occupied[0].name, t)));
    }
    assert!(allowed(Phone::decide(&doors, "Gym", tuesday_10am)));
    out_until(Phone::decide(&doors, "Gym", tuesday_night), wednesday_6am);
    assert!(allowed(Phone::decide(&doors, "Gym", saturday_noon)));
    assert!(allowed(Phone::decide(&doors, "Pool", tuesday_10am)));
    out_until(Phone::decide(&doors, "Pool", saturday_noon), monday_9am);
    assert_eq!(Phone::decide(&doors, "Leasing Office", tuesday_10am), None);
    // Doorcodes where a key enables them; May Share per door.
    let lobby = doors.doors.iter().find(|d| d.name == "Lobby").unwrap();
    assert!(lobby.doorcode.is_some() && lobby.may_share);
    let pool = doors.doors.iter().find(|d| d.name == "Pool").unwrap();
    assert!(pool.doorcode.is_none() && !pool.may_share);
    // Residents never see key names.
    let raw = s
        .call(
            "GET",
            &format!("/v1/me/doors?device_id={}", phone.device_id),
            phone.token(),
            None,
        )
        .await
        .1
        .to_string();
    for key_name in [
        "Amenities",
        "Residences",
        "Employee",
        "Apartment key",
        "Vendors",
        "Tour",
    ] {
        assert!(!raw.contains(key_name), "{key_name} leaked to a resident");
    }

    // Max, maintenance: everything but occupied units, 24/7.
    let doors = Phone::sign_in(&s, "max@example.com").await.doors(&s).await;
    assert_eq!(doors.doors.len(), 3 + 3 + 1 + 20 + 10);
    for t in [tuesday_10am, tuesday_night, saturday_noon] {
        assert!(allowed(Phone::decide(&doors, "Loading Dock", t)));
        assert!(allowed(Phone::decide(&doors, "Pool", t)));
        assert!(allowed(Phone::decide(&doors, &vacant[0].name, t)));
    }
    assert_eq!(Phone::decide(&doors, &occupied[0].name, tuesday_10am), None);

    // Lea, leasing: business hours, except the vacant units the Tour key gives 24/7.
    let doors = Phone::sign_in(&s, "lea@example.com").await.doors(&s).await;
    assert!(allowed(Phone::decide(
        &doors,
        "Leasing Office",
        tuesday_10am
    )));
    out_until(
        Phone::decide(&doors, "Leasing Office", tuesday_night),
        wednesday_8am,
    );
    out_until(
        Phone::decide(&doors, "Leasing Office", saturday_noon),
        monday_8am,
    );
    assert!(allowed(Phone::decide(
        &doors,
        &vacant[3].name,
        saturday_noon
    )));
    let vacant_door = doors
        .doors
        .iter()
        .find(|d| d.name == vacant[3].name)
        .unwrap();
    assert!(
        vacant_door.may_share,
        "the Tour key is given with May Share on"
    );

    // Victor, vendor: entrances, service and amenities in business hours, never shareable.
    let doors = Phone::sign_in(&s, "victor@example.com")
        .await
        .doors(&s)
        .await;
    assert_eq!(doors.doors.len(), 3 + 3 + 20);
    assert!(allowed(Phone::decide(&doors, "Mail Room", tuesday_10am)));
    out_until(
        Phone::decide(&doors, "Mail Room", tuesday_night),
        wednesday_8am,
    );
    out_until(Phone::decide(&doors, "Gym", saturday_noon), monday_8am);
    out_until(Phone::decide(&doors, "Gym", sunday_6am), monday_8am);
    assert!(doors.doors.iter().all(|d| !d.may_share));
    assert_eq!(Phone::decide(&doors, "Leasing Office", tuesday_10am), None);
}
