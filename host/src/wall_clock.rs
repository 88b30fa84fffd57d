//! The wall clock at an instant already read: each thread reads the
//! system's wall clock at most once a second and places the instants in
//! between against that reading, so that a request's time (`requestTime`,
//! a log entry's, a guest's deadline) costs no clock read of its own. (A
//! clock read is a visible share of a small request: about a quarter of a
//! percent each, measured on the request path.)
//!
//! Between two readings the wall clock is taken to move as the monotonic
//! one does; NTP's slewing moves it by at most half a millisecond a second,
//! and a step of the clock shows within a second.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

/// How long a reading stands.
const REREAD: Duration = Duration::from_secs(1);

thread_local! {
    static READING: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
}

/// The wall-clock time of `at` (an instant of the last moments).
pub fn at(at: Instant) -> SystemTime {
    READING.with(|reading| {
        let apart = |instant: Instant| at.max(instant) - at.min(instant);
        let (instant, wall) = match reading.get() {
            Some((instant, wall)) if apart(instant) < REREAD => (instant, wall),
            _ => {
                let fresh = (Instant::now(), SystemTime::now());
                reading.set(Some(fresh));
                fresh
            }
        };
        if at >= instant { wall + (at - instant) } else { wall - (instant - at) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_is_placed_against_the_wall_clock() {
        let before = SystemTime::now();
        let now = Instant::now();
        let placed = at(now);
        let after = SystemTime::now();
        assert!(placed >= before - Duration::from_millis(1) && placed <= after + Duration::from_millis(1));
        // Instants on either side of the reading keep their distance.
        let later = now + Duration::from_millis(300);
        assert_eq!(at(later).duration_since(placed).unwrap(), Duration::from_millis(300));
        let earlier = now.checked_sub(Duration::from_millis(200)).unwrap();
        assert_eq!(placed.duration_since(at(earlier)).unwrap(), Duration::from_millis(200));
    }
}
