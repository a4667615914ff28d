//! The transcript: one line per step (mark, simulated time, real duration, step, outcome),
//! detail lines under it, and a summary that names every step that did not behave.

use std::time::{Duration, Instant};

use anstream::println;
use indicatif::{ProgressBar, ProgressStyle};

use super::steps::{Outcome, StepError};
use crate::show::{self, paint, BOLD, DIM, FAIL, OK, WARN};

/// Where detail lines start: under the step's name.
const INDENT: usize = 26;

pub struct Report {
    started: Instant,
    total: usize,
    passed: usize,
    problems: Vec<String>,
}

impl Report {
    pub fn new(total: usize) -> Report {
        Report {
            started: Instant::now(),
            total,
            passed: 0,
            problems: Vec::new(),
        }
    }

    pub fn header(&self, first: &str, second: &str) {
        println!("{}", paint(BOLD, first));
        println!("{}", paint(DIM, second));
        println!();
    }

    /// A spinner on stderr while a step runs: only a terminal shows it, so transcripts and
    /// pipes stay clean.
    pub fn working(&self, name: &str) -> ProgressBar {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("  {spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(80));
        bar
    }

    pub fn step(
        &mut self,
        number: usize,
        name: &str,
        clock: &str,
        took: Duration,
        result: Result<Outcome, StepError>,
    ) {
        let time = format!("{clock}  {:>7}", show::duration(took));
        match result {
            Ok(outcome) => {
                self.passed += 1;
                println!(
                    "  {} {}  {} — {}",
                    paint(OK, "✓"),
                    paint(DIM, time),
                    paint(BOLD, name),
                    outcome.line
                );
                for d in outcome.details {
                    println!("{:INDENT$}{d}", "");
                }
            }
            Err(StepError::Failed(why)) => {
                println!(
                    "  {} {}  {} — {}",
                    paint(FAIL, "✗"),
                    paint(DIM, time),
                    paint(BOLD, name),
                    paint(FAIL, &why)
                );
                self.problems.push(format!("step {number}, {name}: {why}"));
            }
            Err(StepError::Skipped(why)) => {
                println!(
                    "  {} {}  {} — {}",
                    paint(WARN, "–"),
                    paint(DIM, time),
                    paint(BOLD, name),
                    paint(WARN, format!("skipped: {why}"))
                );
                self.problems
                    .push(format!("step {number}, {name}: skipped, {why}"));
            }
        }
    }

    /// Prints the summary; true when every step behaved as expected.
    pub fn summary(&self, span: &str) -> bool {
        println!();
        let took = show::duration(self.started.elapsed());
        if self.problems.is_empty() {
            println!(
                "{} in {took} ({span}).",
                paint(OK, format!("All {} steps behaved as expected", self.total))
            );
            true
        } else {
            println!(
                "{} in {took}; these did not:",
                paint(
                    FAIL,
                    format!(
                        "{} of {} steps behaved as expected",
                        self.passed, self.total
                    )
                )
            );
            for p in &self.problems {
                println!("  {}", paint(FAIL, p));
            }
            false
        }
    }
}
