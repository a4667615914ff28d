//! Hands-free unlock's decisions, without I/O: which lock to open now, from the signal
//! strengths the scan reports. A door opens once per approach: when the median of its lock's
//! recent readings reaches `unlock_rssi`. It is armed again only once the phone has gone away
//! (the median falls below `away_rssi`, lower than `unlock_rssi`, so a signal wavering at the
//! threshold cannot open the door twice; or the lock is not heard for `window`), or, if the
//! app sets one, after `hold_off`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProximityConfig {
    /// The median signal (dBm) at or above which the door opens.
    pub unlock_rssi: i16,
    /// The median signal (dBm) below which the phone has gone away; lower than `unlock_rssi`.
    pub away_rssi: i16,
    /// How many of the newest readings the median takes; no decision on fewer.
    pub samples: usize,
    /// Readings older than this are forgotten; a lock not heard for this long is away.
    pub window: Duration,
    /// Re-arms a door this long after it opened even if the phone never went away; `None`:
    /// only going away re-arms it (a resident waiting by the door does not hold it open).
    pub hold_off: Option<Duration>,
    /// After an attempt that failed on the radio, the next one waits this long.
    pub retry_after: Duration,
    /// A lock must stay close this long before it opens, so that of two doors approached
    /// together the nearer is known (the farther one's readings may arrive first).
    pub dwell: Duration,
}

impl Default for ProximityConfig {
    fn default() -> ProximityConfig {
        ProximityConfig {
            // About an arm's length from a lock advertising at 0 dBm; -75 is a few metres.
            unlock_rssi: -60,
            away_rssi: -75,
            samples: 5,
            window: Duration::from_secs(4),
            hold_off: None,
            retry_after: Duration::from_secs(3),
            dwell: Duration::from_millis(400),
        }
    }
}

impl ProximityConfig {
    /// Why the settings cannot work, as (field, reason).
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if self.away_rssi >= self.unlock_rssi {
            return Err(("away_rssi", "must be below unlock_rssi"));
        }
        if self.samples == 0 || self.samples > 64 {
            return Err(("samples", "must be in 1..=64"));
        }
        if self.window.is_zero() {
            return Err(("window", "must be positive"));
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Track {
    /// The newest readings, oldest first, at most `samples`, none older than `window`.
    readings: VecDeque<(Instant, i16)>,
    /// Opened on this approach: not again until the phone went away or the hold-off passed.
    opened_at: Option<Instant>,
    retry_at: Option<Instant>,
    /// Since when a full set of readings has put the median at `unlock_rssi` or above.
    close_since: Option<Instant>,
}

impl Track {
    fn median(&self) -> Option<i16> {
        let mut values: Vec<i16> = self.readings.iter().map(|(_, r)| *r).collect();
        values.sort_unstable();
        values.get(values.len() / 2).copied()
    }
}

/// The locks heard lately and what the phone did at each.
#[derive(Debug)]
pub struct Proximity {
    config: ProximityConfig,
    tracks: HashMap<String, Track>,
}

impl Proximity {
    pub fn new(config: ProximityConfig) -> Proximity {
        Proximity {
            config,
            tracks: HashMap::new(),
        }
    }

    /// A reading of a lock's advertisement.
    pub fn seen(&mut self, lock_id: &str, rssi: i16, at: Instant) {
        let track = self.tracks.entry(lock_id.to_owned()).or_default();
        track.readings.push_back((at, rssi));
        while track.readings.len() > self.config.samples {
            track.readings.pop_front();
        }
        self.expire(at);
    }

    fn is_close(config: &ProximityConfig, track: &Track) -> bool {
        track.readings.len() >= config.samples
            && track.median().is_some_and(|m| m >= config.unlock_rssi)
    }

    /// Forgets old readings and re-arms doors the phone went away from; call it regularly,
    /// since going out of range means readings stop, not that one arrives.
    pub fn expire(&mut self, at: Instant) {
        let config = self.config;
        self.tracks.retain(|_, track| {
            while track
                .readings
                .front()
                .is_some_and(|(t, _)| at.saturating_duration_since(*t) >= config.window)
            {
                track.readings.pop_front();
            }
            // Not heard for a whole window: gone, and a return is a new approach.
            if track.readings.is_empty() {
                return false;
            }
            if !Proximity::is_close(&config, track) {
                track.close_since = None;
            } else if track.close_since.is_none() {
                track.close_since = Some(at);
            }
            if let Some(opened) = track.opened_at {
                let away = track.median().is_some_and(|m| m < config.away_rssi);
                let waited = config
                    .hold_off
                    .is_some_and(|h| at.saturating_duration_since(opened) >= h);
                if away || waited {
                    track.opened_at = None;
                }
            }
            true
        });
    }

    /// The lock to open now: of the armed, `eligible` locks that are not waiting to retry
    /// and whose median reaches `unlock_rssi`, the nearest, once it has a full set of
    /// readings and has been close for `dwell` (until then nothing opens, so a farther lock
    /// heard first cannot win).
    pub fn due(&self, at: Instant, eligible: impl Fn(&str) -> bool) -> Option<String> {
        let (id, track, _) = self
            .tracks
            .iter()
            .filter(|(_, t)| t.opened_at.is_none() && t.retry_at.is_none_or(|r| at >= r))
            .filter_map(|(id, t)| Some((id, t, t.median()?)))
            .filter(|(id, _, median)| *median >= self.config.unlock_rssi && eligible(id))
            .max_by(|(a_id, _, a), (b_id, _, b)| a.cmp(b).then_with(|| b_id.cmp(a_id)))?;
        let settled = track
            .close_since
            .is_some_and(|since| at.saturating_duration_since(since) >= self.config.dwell);
        settled.then(|| id.clone())
    }

    /// The door opened, or the lock refused: nothing more on this approach, at this door or
    /// at any other one as close (a phone between two doors opens only the nearer).
    pub fn settled(&mut self, lock_id: &str, at: Instant) {
        let config = self.config;
        for (id, track) in &mut self.tracks {
            if id == lock_id || Proximity::is_close(&config, track) {
                track.opened_at = Some(at);
                track.retry_at = None;
            }
        }
    }

    /// The attempt failed on the radio (or was cut short): try again after `retry_after`.
    pub fn failed(&mut self, lock_id: &str, at: Instant) {
        if let Some(track) = self.tracks.get_mut(lock_id) {
            track.retry_at = Some(at + self.config.retry_after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aa";
    const B: &str = "bb";

    fn config() -> ProximityConfig {
        ProximityConfig {
            samples: 3,
            dwell: Duration::ZERO,
            ..ProximityConfig::default()
        }
    }

    fn feed(p: &mut Proximity, lock: &str, readings: &[i16], t: &mut Instant) {
        for r in readings {
            *t += Duration::from_millis(200);
            p.seen(lock, *r, *t);
        }
    }

    #[test]
    fn opens_once_per_approach_and_again_after_going_away() {
        let mut t = Instant::now();
        let mut p = Proximity::new(config());
        feed(&mut p, A, &[-80, -70, -65], &mut t);
        assert_eq!(p.due(t, |_| true), None, "median -70 is not close enough");
        feed(&mut p, A, &[-58, -55], &mut t);
        assert_eq!(p.due(t, |_| true).as_deref(), Some(A));
        p.settled(A, t);
        feed(&mut p, A, &[-50, -50, -62, -70, -50], &mut t);
        assert_eq!(p.due(t, |_| true), None, "staying near opens nothing more");
        feed(&mut p, A, &[-80, -82, -81], &mut t);
        feed(&mut p, A, &[-55, -55, -55], &mut t);
        assert_eq!(p.due(t, |_| true).as_deref(), Some(A), "a second approach");
    }

    #[test]
    fn a_lock_not_heard_for_a_window_is_a_new_approach() {
        let mut t = Instant::now();
        let mut p = Proximity::new(config());
        feed(&mut p, A, &[-50, -50, -50], &mut t);
        p.settled(A, t);
        t += Duration::from_secs(5);
        p.expire(t);
        feed(&mut p, A, &[-50, -50], &mut t);
        assert_eq!(p.due(t, |_| true), None, "not a full set of readings yet");
        feed(&mut p, A, &[-50], &mut t);
        assert_eq!(p.due(t, |_| true).as_deref(), Some(A));
    }

    #[test]
    fn one_spike_does_not_open_and_the_nearest_eligible_lock_wins() {
        let mut t = Instant::now();
        let mut p = Proximity::new(config());
        feed(&mut p, A, &[-90, -30, -90], &mut t);
        assert_eq!(p.due(t, |_| true), None);
        // A nearer lock heard only once holds the farther one back until it is known.
        feed(&mut p, A, &[-52, -52, -52], &mut t);
        feed(&mut p, B, &[-45], &mut t);
        assert_eq!(p.due(t, |_| true), None);
        assert_eq!(p.due(t, |l| l != B).as_deref(), Some(A));
        feed(&mut p, A, &[-52, -52, -52], &mut t);
        feed(&mut p, B, &[-45, -45, -45], &mut t);
        assert_eq!(p.due(t, |_| true).as_deref(), Some(B));
        assert_eq!(p.due(t, |l| l != B).as_deref(), Some(A));
        p.settled(B, t);
        assert_eq!(p.due(t, |_| true), None, "one door per approach");
        feed(&mut p, A, &[-90, -90, -90], &mut t);
        feed(&mut p, A, &[-50, -50, -50], &mut t);
        assert_eq!(p.due(t, |_| true).as_deref(), Some(A), "A approached anew");
    }

    #[test]
    fn a_lock_opens_only_after_staying_close_for_the_dwell_and_then_the_nearest() {
        let mut t = Instant::now();
        let mut p = Proximity::new(ProximityConfig {
            dwell: Duration::from_millis(400),
            ..config()
        });
        feed(&mut p, A, &[-80, -80, -80], &mut t);
        feed(&mut p, B, &[-80, -80, -80], &mut t);
        // Both approached together; A's readings happen to cross first.
        feed(&mut p, A, &[-50, -50], &mut t);
        assert_eq!(
            p.due(t, |_| true),
            None,
            "A has not stayed close long enough"
        );
        feed(&mut p, B, &[-45, -45], &mut t);
        feed(&mut p, A, &[-50], &mut t);
        assert_eq!(
            p.due(t, |_| true),
            None,
            "B, nearer, has only just come close"
        );
        feed(&mut p, B, &[-45], &mut t);
        assert_eq!(p.due(t, |_| true).as_deref(), Some(B));
    }

    #[test]
    fn a_failure_waits_before_retrying_and_a_hold_off_re_arms() {
        let mut t = Instant::now();
        let mut p = Proximity::new(ProximityConfig {
            hold_off: Some(Duration::from_secs(10)),
            ..config()
        });
        feed(&mut p, A, &[-50, -50, -50], &mut t);
        p.failed(A, t);
        assert_eq!(p.due(t, |_| true), None);
        t += Duration::from_secs(3);
        feed(&mut p, A, &[-50], &mut t);
        assert_eq!(p.due(t, |_| true).as_deref(), Some(A));
        p.settled(A, t);
        for _ in 0..50 {
            feed(&mut p, A, &[-50], &mut t);
        }
        assert_eq!(
            p.due(t, |_| true).as_deref(),
            Some(A),
            "10 s near: re-armed"
        );
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let bad = ProximityConfig {
            away_rssi: -60,
            ..ProximityConfig::default()
        };
        assert_eq!(bad.check(), Err(("away_rssi", "must be below unlock_rssi")));
        assert!(ProximityConfig::default().check().is_ok());
    }

    /// Generated walks past three locks (readings, time passing, decisions with varying
    /// eligibility, opened or failed outcomes), checked against the readings' history rather
    /// than the tracker's own state.
    mod walks {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Step {
            Seen(usize, i16),
            Wait(u64),
            Decide { eligible: [bool; 3], opens: bool },
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                5 => (0..3usize, -95i16..-35).prop_map(|(l, r)| Step::Seen(l, r)),
                2 => (0..1500u64).prop_map(Step::Wait),
                3 => (any::<[bool; 3]>(), any::<bool>())
                    .prop_map(|(eligible, opens)| Step::Decide { eligible, opens }),
            ]
        }

        const LOCKS: [&str; 3] = ["l0", "l1", "l2"];

        /// The history: every reading with its time, and every observation instant.
        struct History {
            readings: Vec<(Instant, usize, i16)>,
            observed: Vec<Instant>,
        }

        impl History {
            /// The newest `samples` readings of `lock` within the window before `at`.
            fn recent(&self, c: &ProximityConfig, lock: usize, at: Instant) -> Vec<i16> {
                let mut r: Vec<i16> = self
                    .readings
                    .iter()
                    .filter(|(t, l, _)| {
                        *l == lock && *t <= at && at.saturating_duration_since(*t) < c.window
                    })
                    .map(|(_, _, r)| *r)
                    .collect();
                let keep = r.len().saturating_sub(c.samples);
                r.drain(..keep);
                r
            }

            fn median(mut r: Vec<i16>) -> Option<i16> {
                r.sort_unstable();
                r.get(r.len() / 2).copied()
            }

            fn close(&self, c: &ProximityConfig, lock: usize, at: Instant) -> bool {
                let r = self.recent(c, lock, at);
                r.len() >= c.samples && Self::median(r).is_some_and(|m| m >= c.unlock_rssi)
            }

            /// Whether the phone went away from `lock` at some observation in `(from, to]`:
            /// a weak median, or a whole window without a reading.
            fn went_away(
                &self,
                c: &ProximityConfig,
                lock: usize,
                from: Instant,
                to: Instant,
            ) -> bool {
                self.observed
                    .iter()
                    .filter(|s| **s > from && **s <= to)
                    .any(|s| {
                        let r = self.recent(c, lock, *s);
                        r.is_empty() || Self::median(r).is_some_and(|m| m < c.away_rssi)
                    })
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

            #[test]
            fn a_door_opens_only_when_close_for_the_dwell_and_once_per_approach(
                steps in proptest::collection::vec(step(), 1..120),
                hold_off in proptest::option::of(1000u64..8000),
            ) {
                let c = ProximityConfig {
                    hold_off: hold_off.map(Duration::from_millis),
                    ..ProximityConfig::default()
                };
                let mut p = Proximity::new(c);
                let start = Instant::now();
                let mut t = start;
                let mut h = History { readings: Vec::new(), observed: Vec::new() };
                let mut opened: [Option<Instant>; 3] = [None; 3];
                for s in steps {
                    match s {
                        Step::Seen(l, r) => {
                            t += Duration::from_millis(50);
                            p.seen(LOCKS[l], r, t);
                            h.readings.push((t, l, r));
                            h.observed.push(t);
                        }
                        Step::Wait(ms) => {
                            t += Duration::from_millis(ms);
                            p.expire(t);
                            h.observed.push(t);
                        }
                        Step::Decide { eligible, opens } => {
                            p.expire(t);
                            h.observed.push(t);
                            let due = p.due(t, |id| eligible[LOCKS.iter().position(|l| *l == id).unwrap()]);
                            let Some(id) = due else { continue };
                            let l = LOCKS.iter().position(|x| *x == id).unwrap();
                            prop_assert!(eligible[l], "{id} is not eligible");
                            prop_assert!(h.close(&c, l, t), "{id} is not close: {:?}", h.recent(&c, l, t));
                            // Close at every observation of the last dwell.
                            for s in h.observed.iter().filter(|s| t.saturating_duration_since(**s) <= c.dwell && **s <= t) {
                                prop_assert!(h.close(&c, l, *s),
                                    "{id} was not close {:?} before opening", t - *s);
                            }
                            prop_assert!(
                                h.observed.iter().any(|s| *s <= t && t.saturating_duration_since(*s) >= c.dwell && h.close(&c, l, *s)),
                                "{id} opened before it stayed close for the dwell"
                            );
                            if let Some(t0) = opened[l] {
                                let waited = c.hold_off.is_some_and(|d| t.saturating_duration_since(t0) >= d);
                                prop_assert!(waited || h.went_away(&c, l, t0, t),
                                    "{id} opened twice on one approach");
                            }
                            if opens {
                                p.settled(id.as_str(), t);
                                opened[l] = Some(t);
                            } else {
                                p.failed(id.as_str(), t);
                            }
                        }
                    }
                }
            }
        }
    }
}
