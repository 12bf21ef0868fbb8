//! An injectable clock, so expiry is testable without sleeping.

use std::{fmt, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

/// A source of the current time.
///
/// The manager reads time only through this trait. Production uses
/// [`SystemClock`]; tests use [`ManualClock`] and move time forward.
///
/// # Example
///
/// ```
/// use chrono::{DateTime, Utc};
/// use portcullis::Clock;
///
/// #[derive(Debug)]
/// struct Epoch;
///
/// impl Clock for Epoch {
///     fn now(&self) -> DateTime<Utc> {
///         DateTime::UNIX_EPOCH
///     }
/// }
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; cheap to clone, clones share time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        *self.0.lock() += by;
    }

    /// Sets the clock.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock() = at;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(Utc::now())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}
