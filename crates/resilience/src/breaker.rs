//! The circuit breaker: a count-based sliding window over the last calls to one downstream,
//! with resilience4j's states and rules, so the seed's numbers mean what they meant there.
//!
//! - **Closed**: calls go through; each outcome enters the window. Once the window holds at
//!   least `minimum_calls` (or is full, if it is smaller), the breaker opens when the failure
//!   rate or the slow-call rate reaches its threshold.
//! - **Open**: calls are rejected without touching the network. After `wait_in_open` the
//!   breaker moves to half-open by itself (a timer, so the gauge moves without traffic).
//! - **Half-open**: `half_open_calls` probes are let through, the rest rejected. When all
//!   have answered, their rates decide: open again, or closed with an empty window.
//!
//! Every transition starts a new generation; outcomes of calls admitted in an earlier one
//! are ignored, so a slow call that started before the breaker opened cannot count as a
//! probe. A permit dropped without an outcome (the caller's future was cancelled, or the
//! rate limiter refused the call) gives its probe slot back.
//!
//! No crate was used: the small ones on crates.io count consecutive failures or use time
//! windows, and none has the slow-call rate or the half-open probe count the seed sets.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::observe;
use crate::settings::BreakerSettings;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The value of the `resilience_circuit_state` gauge: 0 closed, 1 open, 2 half-open.
    pub fn gauge_value(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one call did, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub failure: bool,
    pub slow: bool,
}

/// The last `capacity` outcomes with running counts.
#[derive(Debug)]
struct Window {
    capacity: usize,
    calls: VecDeque<Outcome>,
    failures: usize,
    slow: usize,
}

impl Window {
    fn new(capacity: u32) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(1);
        Self {
            capacity,
            calls: VecDeque::with_capacity(capacity.min(1024)),
            failures: 0,
            slow: 0,
        }
    }

    fn push(&mut self, outcome: Outcome) {
        if self.calls.len() == self.capacity
            && let Some(old) = self.calls.pop_front()
        {
            self.failures -= usize::from(old.failure);
            self.slow -= usize::from(old.slow);
        }
        self.failures += usize::from(outcome.failure);
        self.slow += usize::from(outcome.slow);
        self.calls.push_back(outcome);
    }

    fn len(&self) -> usize {
        self.calls.len()
    }

    /// (failure rate, slow-call rate) in percent.
    fn rates(&self) -> (f64, f64) {
        if self.calls.is_empty() {
            return (0.0, 0.0);
        }
        let n = self.calls.len() as f64;
        (
            self.failures as f64 * 100.0 / n,
            self.slow as f64 * 100.0 / n,
        )
    }

    fn trips(&self, settings: &BreakerSettings) -> bool {
        let (failure_rate, slow_rate) = self.rates();
        failure_rate >= f64::from(settings.failure_rate_threshold)
            || slow_rate >= f64::from(settings.slow_call_rate_threshold)
    }
}

#[derive(Debug)]
enum Phase {
    Closed { window: Window },
    Open { until: Instant },
    HalfOpen { issued: u32, probes: Window },
}

/// A state change, with the rates that caused it (for the log line).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    pub failure_rate: f64,
    pub slow_rate: f64,
}

/// The state machine, with time passed in so it can be tested without sleeping.
#[derive(Debug)]
pub(crate) struct Core {
    settings: BreakerSettings,
    phase: Phase,
    generation: u64,
}

impl Core {
    pub fn new(settings: BreakerSettings) -> Self {
        let window = Window::new(settings.window_size);
        Self {
            settings,
            phase: Phase::Closed { window },
            generation: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Open → half-open once the wait is over.
    pub fn refresh(&mut self, now: Instant) -> Option<Transition> {
        match self.phase {
            Phase::Open { until } if now >= until => {
                let probes = Window::new(self.settings.half_open_calls);
                Some(self.enter(Phase::HalfOpen { issued: 0, probes }, (0.0, 0.0)))
            }
            _ => None,
        }
    }

    /// A permit (the generation to report the outcome under), or how long until calls may
    /// be tried again (zero while half-open probes are still out).
    pub fn acquire(&mut self, now: Instant) -> (Result<u64, Duration>, Option<Transition>) {
        let transition = self.refresh(now);
        let admission = match &mut self.phase {
            Phase::Closed { .. } => Ok(self.generation),
            Phase::Open { until } => Err(until.saturating_duration_since(now)),
            Phase::HalfOpen { issued, .. } => {
                if *issued < self.settings.half_open_calls {
                    *issued += 1;
                    Ok(self.generation)
                } else {
                    Err(Duration::ZERO)
                }
            }
        };
        (admission, transition)
    }

    /// The outcome of a call admitted under `generation`.
    pub fn record(
        &mut self,
        generation: u64,
        outcome: Outcome,
        now: Instant,
    ) -> Option<Transition> {
        if generation != self.generation {
            return None;
        }
        let settings = &self.settings;
        match &mut self.phase {
            Phase::Closed { window } => {
                window.push(outcome);
                let enough = window.len()
                    >= usize::try_from(settings.minimum_calls.min(settings.window_size))
                        .unwrap_or(usize::MAX);
                if enough && window.trips(settings) {
                    let rates = window.rates();
                    return Some(self.open(now, rates));
                }
                None
            }
            Phase::HalfOpen { probes, .. } => {
                probes.push(outcome);
                if probes.len() < usize::try_from(settings.half_open_calls).unwrap_or(usize::MAX) {
                    return None;
                }
                let rates = probes.rates();
                if probes.trips(settings) {
                    Some(self.open(now, rates))
                } else {
                    let window = Window::new(self.settings.window_size);
                    Some(self.enter(Phase::Closed { window }, rates))
                }
            }
            Phase::Open { .. } => None,
        }
    }

    /// A permit given back without an outcome: its probe slot is free again.
    pub fn release(&mut self, generation: u64) {
        if generation != self.generation {
            return;
        }
        if let Phase::HalfOpen { issued, .. } = &mut self.phase {
            *issued = issued.saturating_sub(1);
        }
    }

    fn open(&mut self, now: Instant, rates: (f64, f64)) -> Transition {
        let until = now + self.settings.wait_in_open;
        self.enter(Phase::Open { until }, rates)
    }

    fn enter(&mut self, phase: Phase, (failure_rate, slow_rate): (f64, f64)) -> Transition {
        let from = self.state();
        self.phase = phase;
        self.generation += 1;
        Transition {
            from,
            to: self.state(),
            failure_rate,
            slow_rate,
        }
    }
}

/// The breaker one client shares across all its calls. Public for callers that cannot go
/// through [`crate::ResilientClient`] (the gateway's streaming proxy): ask
/// [`CircuitBreaker::try_acquire`] before each call and [`Permit::record`] how it went.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    downstream: String,
    wait_in_open: Duration,
    core: Mutex<Core>,
}

impl CircuitBreaker {
    pub fn new(downstream: &str, settings: BreakerSettings) -> Self {
        observe::circuit_state(downstream, BreakerState::Closed);
        Self {
            shared: Arc::new(Shared {
                downstream: downstream.to_owned(),
                wait_in_open: settings.wait_in_open,
                core: Mutex::new(Core::new(settings)),
            }),
        }
    }

    pub fn state(&self) -> BreakerState {
        let (state, transition) = {
            let mut core = self.core();
            let transition = core.refresh(Instant::now());
            (core.state(), transition)
        };
        self.announce(transition);
        state
    }

    /// A permit to call, or how long until calls may be tried again.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Duration> {
        let (admission, transition) = self.core().acquire(Instant::now());
        self.announce(transition);
        admission.map(|generation| Permit {
            breaker: self,
            generation,
            settled: false,
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // The core is consistent after every statement; a panic elsewhere cannot break it.
        self.shared
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, generation: u64, outcome: Outcome) {
        let transition = self.core().record(generation, outcome, Instant::now());
        self.announce(transition);
    }

    fn release(&self, generation: u64) {
        self.core().release(generation);
    }

    /// Gauge, log line, and (on opening) the timer that moves to half-open.
    fn announce(&self, transition: Option<Transition>) {
        let Some(t) = transition else { return };
        let downstream = self.shared.downstream.as_str();
        observe::circuit_state(downstream, t.to);
        match t.to {
            BreakerState::Open => {
                tracing::warn!(
                    downstream,
                    from = t.from.as_str(),
                    failure_rate = t.failure_rate,
                    slow_call_rate = t.slow_rate,
                    wait_ms =
                        u64::try_from(self.shared.wait_in_open.as_millis()).unwrap_or(u64::MAX),
                    "circuit opened: calls to {downstream} are rejected until it recovers"
                );
                self.schedule_half_open();
            }
            BreakerState::HalfOpen => tracing::info!(
                downstream,
                from = t.from.as_str(),
                "circuit half-open: probing {downstream}"
            ),
            BreakerState::Closed => tracing::info!(
                downstream,
                from = t.from.as_str(),
                failure_rate = t.failure_rate,
                slow_call_rate = t.slow_rate,
                "circuit closed: {downstream} recovered"
            ),
        }
    }

    /// Moves to half-open when the wait ends even if no call comes (resilience4j's
    /// `automatic-transition-from-open-to-half-open-enabled`). Without a tokio runtime the
    /// move still happens, on the next call or state read.
    fn schedule_half_open(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        // A little past the deadline, so the timer never wakes just before it.
        let wait = self.shared.wait_in_open + Duration::from_millis(1);
        runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(shared) = weak.upgrade() {
                CircuitBreaker { shared }.state();
            }
        });
    }
}

/// Leave to make one call. Report how it went with [`Permit::record`]; dropping it unused
/// gives the slot back.
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u64,
    settled: bool,
}

impl Permit<'_> {
    pub fn record(mut self, outcome: Outcome) {
        self.settled = true;
        self.breaker.record(self.generation, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.release(self.generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Outcome {
        failure: false,
        slow: false,
    };
    const FAIL: Outcome = Outcome {
        failure: true,
        slow: false,
    };
    const SLOW: Outcome = Outcome {
        failure: false,
        slow: true,
    };

    fn settings() -> BreakerSettings {
        BreakerSettings {
            window_size: 10,
            minimum_calls: 4,
            failure_rate_threshold: 50,
            slow_call_rate_threshold: 75,
            slow_call_duration: Duration::from_millis(100),
            wait_in_open: Duration::from_secs(30),
            half_open_calls: 2,
        }
    }

    fn call(core: &mut Core, now: Instant, outcome: Outcome) -> Option<Transition> {
        let (admission, _) = core.acquire(now);
        let generation = admission.expect("admitted");
        core.record(generation, outcome, now)
    }

    fn open_core(now: Instant) -> Core {
        let mut core = Core::new(settings());
        for _ in 0..4 {
            call(&mut core, now, FAIL);
        }
        assert_eq!(core.state(), BreakerState::Open);
        core
    }

    #[test]
    fn stays_closed_below_the_minimum_number_of_calls() {
        let now = Instant::now();
        let mut core = Core::new(settings());
        for _ in 0..3 {
            assert_eq!(call(&mut core, now, FAIL), None);
        }
        assert_eq!(core.state(), BreakerState::Closed);
    }

    #[test]
    fn opens_when_the_failure_rate_reaches_the_threshold() {
        let now = Instant::now();
        let mut core = Core::new(settings());
        call(&mut core, now, OK);
        call(&mut core, now, OK);
        call(&mut core, now, FAIL);
        assert_eq!(core.state(), BreakerState::Closed);
        // 2 of 4 = 50 % ≥ 50 %.
        let t = call(&mut core, now, FAIL).expect("opens");
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert_eq!(t.failure_rate, 50.0);
    }

    #[test]
    fn stays_closed_just_under_the_failure_rate() {
        let now = Instant::now();
        let mut core = Core::new(settings());
        // 2 of 5 = 40 % < 50 %.
        for outcome in [OK, OK, FAIL, OK, FAIL] {
            call(&mut core, now, outcome);
        }
        assert_eq!(core.state(), BreakerState::Closed);
    }

    #[test]
    fn slow_calls_open_it_too() {
        let now = Instant::now();
        let mut core = Core::new(settings());
        for outcome in [SLOW, SLOW, OK] {
            call(&mut core, now, outcome);
        }
        assert_eq!(core.state(), BreakerState::Closed);
        // 3 of 4 slow = 75 % ≥ 75 %, no failure at all.
        call(&mut core, now, SLOW);
        assert_eq!(core.state(), BreakerState::Open);
    }

    #[test]
    fn old_outcomes_slide_out_of_the_window() {
        let now = Instant::now();
        let mut core = Core::new(BreakerSettings {
            window_size: 4,
            ..settings()
        });
        for outcome in [FAIL, OK, OK, OK, OK, FAIL] {
            call(&mut core, now, outcome);
        }
        // Window is [OK, OK, OK, FAIL]: 25 %; the first failure has slid out.
        assert_eq!(core.state(), BreakerState::Closed);
        call(&mut core, now, FAIL);
        assert_eq!(core.state(), BreakerState::Open);
    }

    #[test]
    fn a_minimum_above_the_window_size_means_a_full_window() {
        let now = Instant::now();
        let mut core = Core::new(BreakerSettings {
            window_size: 2,
            minimum_calls: 10,
            ..settings()
        });
        call(&mut core, now, FAIL);
        call(&mut core, now, FAIL);
        assert_eq!(core.state(), BreakerState::Open);
    }

    #[test]
    fn open_rejects_with_the_remaining_wait_then_turns_half_open() {
        let now = Instant::now();
        let mut core = open_core(now);
        let later = now + Duration::from_secs(10);
        let (admission, _) = core.acquire(later);
        assert_eq!(admission, Err(Duration::from_secs(20)));
        let (admission, transition) = core.acquire(now + Duration::from_secs(30));
        assert!(admission.is_ok());
        assert_eq!(transition.map(|t| t.to), Some(BreakerState::HalfOpen));
    }

    #[test]
    fn half_open_admits_only_the_permitted_probes() {
        let now = Instant::now();
        let mut core = open_core(now);
        let later = now + Duration::from_secs(30);
        assert!(core.acquire(later).0.is_ok());
        assert!(core.acquire(later).0.is_ok());
        assert_eq!(core.acquire(later).0, Err(Duration::ZERO));
    }

    #[test]
    fn successful_probes_close_it_with_a_fresh_window() {
        let now = Instant::now();
        let mut core = open_core(now);
        let later = now + Duration::from_secs(30);
        assert_eq!(call(&mut core, later, OK), None, "waits for every probe");
        assert_eq!(core.state(), BreakerState::HalfOpen);
        let t = call(&mut core, later, OK).expect("closes");
        assert_eq!(
            (t.from, t.to),
            (BreakerState::HalfOpen, BreakerState::Closed)
        );
        // The failures before opening are forgotten: three more do not reopen it.
        for _ in 0..3 {
            call(&mut core, later, FAIL);
        }
        assert_eq!(core.state(), BreakerState::Closed);
    }

    #[test]
    fn failing_probes_reopen_it_for_another_wait() {
        let now = Instant::now();
        let mut core = open_core(now);
        let later = now + Duration::from_secs(30);
        call(&mut core, later, OK);
        // 1 of 2 probes failed = 50 % ≥ 50 %.
        let t = call(&mut core, later, FAIL).expect("reopens");
        assert_eq!((t.from, t.to), (BreakerState::HalfOpen, BreakerState::Open));
        let (admission, _) = core.acquire(later + Duration::from_secs(1));
        assert_eq!(admission, Err(Duration::from_secs(29)));
    }

    #[test]
    fn a_released_probe_slot_can_be_used_again() {
        let now = Instant::now();
        let mut core = open_core(now);
        let later = now + Duration::from_secs(30);
        let first = core.acquire(later).0.expect("probe 1");
        let _second = core.acquire(later).0.expect("probe 2");
        assert!(core.acquire(later).0.is_err());
        core.release(first);
        assert!(core.acquire(later).0.is_ok());
    }

    #[test]
    fn outcomes_from_an_earlier_generation_are_ignored() {
        let now = Instant::now();
        let mut core = Core::new(settings());
        let stale = core.acquire(now).0.expect("admitted while closed");
        for _ in 0..4 {
            call(&mut core, now, FAIL);
        }
        let later = now + Duration::from_secs(30);
        core.refresh(later);
        assert_eq!(core.state(), BreakerState::HalfOpen);
        // The call that started while closed finishes now: it is not a probe.
        assert_eq!(core.record(stale, OK, later), None);
        assert_eq!(call(&mut core, later, OK), None);
        assert_eq!(core.state(), BreakerState::HalfOpen);
    }
}
