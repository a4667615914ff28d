//! `door demo`: a resident's day at the seeds' "1800 Main St", with nothing to configure.
//! door-server, the reference locks and the phones run in this process; the phones use
//! door-core's `DoorClient` exactly as an app does. Exits 0 only when every step behaved.

mod report;
mod steps;
mod world;

use std::time::Instant;

use chrono::NaiveDate;

use report::Report;
use steps::{Story, STEPS};
use world::World;

/// Runs the day; true when every step behaved as expected.
pub async fn run() -> crate::CliResult<bool> {
    let zone = chrono_tz::America::New_York;
    let start = NaiveDate::from_ymd_opt(2026, 11, 24)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .expect("a valid date");
    let mut story = Story::new(World::new(zone, start)?);
    let mut report = Report::new(STEPS.len());
    let begin = story.sim_now();
    report.header(
        "door demo — a resident's day at 1800 Main St, through door-core as an app uses it",
        &format!(
            "door-server, reference locks and two phones in this process, on one simulated \
             clock from {} ({}); durations are real.",
            begin.format("%a %Y-%m-%d %H:%M"),
            zone.name()
        ),
    );
    for (i, step) in STEPS.iter().enumerate() {
        let spinner = report.working(step.name);
        let started = Instant::now();
        let result = (step.run)(&mut story).await;
        let took = started.elapsed();
        spinner.finish_and_clear();
        let clock = story.sim_now().format("%a %H:%M").to_string();
        report.step(i + 1, step.name, &clock, took, result);
    }
    let end = story.sim_now();
    let ok = report.summary(&format!(
        "simulated {} → {}",
        begin.format("%a %H:%M"),
        end.format("%a %H:%M")
    ));
    if let Some(server) = story.world.server.take() {
        server.stop().await;
    }
    Ok(ok)
}
