//! The asynchronous machinery every platform channel shares:
//!
//! - [`Dispatcher`]: hands inbound events to the engine on a blocking thread
//!   (the engine writes to disk) and wakes the outbox workers of the channels
//!   that got new actions.
//! - [`run_outbox`]: one worker per channel delivers that channel's actions
//!   from the persistent outbox, oldest first per recipient, acknowledging each
//!   one the platform accepted. A failure that may pass (network, 5xx, 429) is
//!   retried with exponential backoff or the platform's `retry_after`, without
//!   holding up other recipients; a refusal for good is moved to the failed list.
//! - [`RateLimiter`]: pacing below a platform's limits, so that limits are
//!   respected by waiting rather than by errors.
//! - [`run_ticker`]: fires the engine's timer tick at start and then
//!   periodically, so reminders go out on time (the engine decides what is due
//!   from the time it is given; the ticker only says "time passed").
//! - [`Shutdown`]: the signal that stops channels gracefully.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Mutex, Notify, watch};
use tokio::time::Instant;

use crate::engine::{Engine, EngineError, Inbound};
use crate::model::{Action, Channel, Outgoing};
use crate::store::{Store, StoreError};

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// May succeed later (network error, HTTP 5xx, HTTP 429).
    Retry {
        /// The platform's own wait (`retry_after`), if it gave one.
        after: Option<Duration>,
        /// What happened, for the log.
        reason: String,
    },
    /// Will never succeed (the user blocked the bot, the chat does not exist).
    Permanent(String),
}

/// Carries out one channel's actions on its platform.
pub trait Deliverer: Send + Sync + 'static {
    /// The channel whose actions this delivers.
    fn channel(&self) -> Channel;
    /// Carry out one action; Ok once the platform accepted it.
    fn deliver(&self, action: &Action) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// The current time, as the engine sees it (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Feeds events to the engine and wakes the outbox workers. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    engine: Arc<Engine>,
    wakers: Arc<HashMap<Channel, Arc<Notify>>>,
    clock: Clock,
}

impl Dispatcher {
    /// A dispatcher over an engine, using the system clock.
    pub fn new(engine: Arc<Engine>) -> Dispatcher {
        Dispatcher::with_clock(engine, Arc::new(Timestamp::now))
    }

    /// A dispatcher with its own clock.
    pub fn with_clock(engine: Arc<Engine>, clock: Clock) -> Dispatcher {
        let wakers = [Channel::Console, Channel::Telegram, Channel::Discord]
            .into_iter()
            .map(|c| (c, Arc::new(Notify::new())))
            .collect();
        Dispatcher {
            engine,
            wakers: Arc::new(wakers),
            clock,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The store behind the engine.
    pub fn store(&self) -> Arc<dyn Store> {
        self.engine.store().clone()
    }

    /// The notifier that wakes `channel`'s outbox worker.
    pub fn waker(&self, channel: Channel) -> Arc<Notify> {
        self.wakers
            .get(&channel)
            .cloned()
            .unwrap_or_else(|| Arc::new(Notify::new()))
    }

    /// Handle one event (idempotent under `event_id`) and wake the workers of
    /// every channel that has something to deliver. Returns the actions
    /// committed (they are delivered by the outbox workers, not by the caller).
    pub async fn handle(
        &self,
        event_id: Option<String>,
        inbound: Inbound,
    ) -> Result<Vec<Outgoing>, EngineError> {
        let engine = self.engine.clone();
        let now = (self.clock)();
        let out =
            tokio::task::spawn_blocking(move || engine.handle(event_id.as_deref(), inbound, now))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        let mut woken = Vec::new();
        for o in &out {
            let channel = o.action.channel();
            if !woken.contains(&channel) {
                woken.push(channel);
                self.waker(channel).notify_one();
            }
        }
        Ok(out)
    }
}

impl Dispatcher {
    /// Fire the engine's timer tick now: due reminders are committed and their
    /// channels woken.
    pub async fn tick(&self) -> Result<Vec<Outgoing>, EngineError> {
        self.handle(None, Inbound::Tick).await
    }
}

/// Fire the timer tick at start and every `every` until shutdown. A failed
/// tick is logged and retried at the next one (nothing was written).
pub async fn run_ticker(dispatcher: Dispatcher, every: Duration, mut shutdown: Shutdown) {
    let every = every.max(Duration::from_secs(1));
    loop {
        if shutdown.is_triggered() {
            return;
        }
        match dispatcher.tick().await {
            Ok(out) if !out.is_empty() => {
                tracing::info!(actions = out.len(), "timer: reminders due");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "timer tick failed; retrying at the next one"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Stops channels gracefully: they stop taking new updates, finish what is in
/// flight and return.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The sending side of [`Shutdown`].
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl ShutdownTrigger {
    /// Ask everything to stop.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    /// A new shutdown signal and its trigger.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    /// True once shutdown was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when shutdown is asked for.
    pub async fn wait(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Retry delays: 1 s, 2 s, 4 s … up to a minute.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(6)).min(Duration::from_secs(60))
}

/// Who an action goes to: actions to one recipient keep their order.
fn recipient(action: &Action) -> String {
    match action {
        Action::ToCustomer { customer, .. } => format!("customer {customer}"),
        Action::PingStaff { channel, .. }
        | Action::UpdatePing { channel, .. }
        | Action::ToStaff { channel, .. } => format!("staff {channel}"),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Deliver `deliverer`'s channel's actions from the outbox until shutdown.
///
/// Wakes when `wake` is notified, when a retry falls due, and every few
/// seconds in any case. At shutdown it stops between deliveries; what is left
/// stays in the outbox for the next start.
pub async fn run_outbox<D: Deliverer>(
    deliverer: D,
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    mut shutdown: Shutdown,
) -> Result<(), StoreError> {
    let channel = deliverer.channel();
    // recipient → (attempts so far, not before)
    let mut waiting: HashMap<String, (u32, Instant)> = HashMap::new();
    loop {
        if shutdown.is_triggered() {
            return Ok(());
        }
        let s = store.clone();
        let pending: VecDeque<Outgoing> = blocking(move || s.pending())
            .await?
            .into_iter()
            .filter(|o| o.action.channel() == channel)
            .collect();
        let now = Instant::now();
        let mut held: Vec<String> = Vec::new();
        for o in pending {
            if shutdown.is_triggered() {
                return Ok(());
            }
            let to = recipient(&o.action);
            if held.contains(&to) || waiting.get(&to).is_some_and(|(_, at)| *at > now) {
                // An earlier action to the same recipient is waiting: keep the order.
                if !held.contains(&to) {
                    held.push(to);
                }
                continue;
            }
            match deliverer.deliver(&o.action).await {
                Ok(()) => {
                    waiting.remove(&to);
                    let s = store.clone();
                    blocking(move || s.acknowledge(o.id)).await?;
                }
                Err(DeliveryError::Retry { after, reason }) => {
                    let attempts = waiting.get(&to).map(|(a, _)| *a).unwrap_or(0);
                    let wait = after.unwrap_or_else(|| backoff(attempts));
                    tracing::warn!(
                        %channel, outbox = o.id, attempt = attempts + 1,
                        retry_in_ms = wait.as_millis() as u64, %reason,
                        "delivery failed; will retry"
                    );
                    waiting.insert(to.clone(), (attempts + 1, Instant::now() + wait));
                    held.push(to);
                }
                Err(DeliveryError::Permanent(reason)) => {
                    tracing::error!(%channel, outbox = o.id, %reason, "delivery refused for good; kept in the failed list");
                    waiting.remove(&to);
                    let s = store.clone();
                    blocking(move || s.fail(o.id, &reason)).await?;
                }
            }
        }
        waiting.retain(|to, _| held.contains(to));
        let next_retry = waiting.values().map(|(_, at)| *at).min();
        let idle = Instant::now() + Duration::from_secs(5);
        let until = next_retry.map_or(idle, |at| at.min(idle));
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(until) => {}
            _ = shutdown.wait() => return Ok(()),
        }
    }
}

/// Paces sends: at most `per_second` overall, and at most `per_key` sends per
/// `key_window` to any one key (a chat). Waiting, not failing, when over.
pub struct RateLimiter {
    min_gap: Duration,
    per_key: usize,
    key_window: Duration,
    state: Mutex<RateState>,
}

#[derive(Default)]
struct RateState {
    last: Option<Instant>,
    per_key: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// A limiter of `per_second` sends overall and `per_key` sends per `key_window` to one key.
    pub fn new(per_second: u32, per_key: usize, key_window: Duration) -> RateLimiter {
        RateLimiter {
            min_gap: Duration::from_secs(1) / per_second.max(1),
            per_key: per_key.max(1),
            key_window,
            state: Mutex::new(RateState::default()),
        }
    }

    /// Wait until a send to `key` is within the limits, and count it.
    pub async fn wait(&self, key: &str) {
        loop {
            let mut state = self.state.lock().await;
            let now = Instant::now();
            let mut ready_at = state.last.map_or(now, |l| l + self.min_gap);
            let window = self.key_window;
            let limit = self.per_key;
            let sent = state.per_key.entry(key.to_string()).or_default();
            while sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                sent.pop_front();
            }
            if sent.len() >= limit
                && let Some(oldest) = sent.front()
            {
                ready_at = ready_at.max(*oldest + window);
            }
            if ready_at <= now {
                sent.push_back(now);
                state.last = Some(now);
                return;
            }
            drop(state);
            tokio::time::sleep_until(ready_at).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Button, CustomerKey};
    use crate::store::{Change, SledStore};
    use std::sync::Mutex as StdMutex;

    struct Flaky {
        log: Arc<StdMutex<Vec<String>>>,
        /// Texts that fail once with a retry, then succeed.
        fail_once: StdMutex<Vec<String>>,
        /// Texts that fail for good.
        refuse: Vec<String>,
    }

    impl Deliverer for Arc<Flaky> {
        fn channel(&self) -> Channel {
            Channel::Telegram
        }
        async fn deliver(&self, action: &Action) -> Result<(), DeliveryError> {
            let text = match action {
                Action::ToCustomer { text, .. } | Action::ToStaff { text, .. } => text.clone(),
                _ => String::new(),
            };
            if self.refuse.contains(&text) {
                return Err(DeliveryError::Permanent("blocked".into()));
            }
            let mut fail = self.fail_once.lock().unwrap();
            if let Some(i) = fail.iter().position(|t| *t == text) {
                fail.remove(i);
                return Err(DeliveryError::Retry {
                    after: Some(Duration::from_millis(30)),
                    reason: "429".into(),
                });
            }
            self.log.lock().unwrap().push(text);
            Ok(())
        }
    }

    fn to(customer: &str, text: &str) -> Action {
        Action::ToCustomer {
            customer: CustomerKey::new(Channel::Telegram, customer),
            address: String::new(),
            text: text.into(),
            buttons: vec![Button::new("x", "y")],
        }
    }

    #[tokio::test]
    async fn retries_keep_order_per_recipient_and_do_not_block_others() {
        let store: Arc<dyn Store> = Arc::new(SledStore::temporary().unwrap());
        store
            .commit(Change {
                actions: vec![
                    to("a", "a1"),
                    to("b", "b1"),
                    to("a", "a2"),
                    to("c", "refused"),
                    Action::ToCustomer {
                        customer: CustomerKey::new(Channel::Discord, "d"),
                        address: String::new(),
                        text: "other channel".into(),
                        buttons: vec![],
                    },
                ],
                ..Change::default()
            })
            .unwrap();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let flaky = Arc::new(Flaky {
            log: log.clone(),
            fail_once: StdMutex::new(vec!["a1".into()]),
            refuse: vec!["refused".into()],
        });
        let (trigger, shutdown) = Shutdown::new();
        let wake = Arc::new(Notify::new());
        let worker = tokio::spawn(run_outbox(flaky, store.clone(), wake.clone(), shutdown));
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.lock().unwrap().len() < 3 {
            assert!(
                Instant::now() < deadline,
                "not delivered: {:?}",
                log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        trigger.trigger();
        worker.await.unwrap().unwrap();
        // b1 went first (a was waiting); a1 before a2; the refused one is kept aside.
        assert_eq!(*log.lock().unwrap(), vec!["b1", "a1", "a2"]);
        let left = store.pending().unwrap();
        assert_eq!(left.len(), 1, "only the other channel's action remains");
        assert_eq!(store.failed().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_paces_overall_and_per_key() {
        let limiter = RateLimiter::new(10, 2, Duration::from_secs(60));
        let start = Instant::now();
        limiter.wait("group").await;
        limiter.wait("group").await;
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_secs(1));
        limiter.wait("other").await;
        assert!(start.elapsed() < Duration::from_secs(1));
        // The third send to "group" waits for the window.
        limiter.wait("group").await;
        assert!(start.elapsed() >= Duration::from_secs(60));
    }

    #[tokio::test]
    async fn the_ticker_fires_at_start_and_stops_at_shutdown() {
        use crate::config::Config;
        use crate::engine::{CustomerInfo, EngineSettings, Knowledge};
        let config = Config::default();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
        let intents = crate::intents::IntentSet::load_dir(&dir, &config.languages).unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::temporary().unwrap());
        let engine = Arc::new(Engine::new(
            store.clone(),
            Knowledge::build(intents, config.matcher),
            EngineSettings::from_config(&config),
        ));
        let opened: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        let customer = CustomerInfo {
            key: CustomerKey::new(Channel::Telegram, "7"),
            name: "Lucía".into(),
            address: "7".into(),
            language_hint: None,
        };
        engine
            .handle(
                None,
                Inbound::Message {
                    customer,
                    text: "I want to talk to a person".into(),
                    attachment: None,
                },
                opened,
            )
            .unwrap();
        for o in store.pending().unwrap() {
            store.acknowledge(o.id).unwrap();
        }
        // The clock stands 31 minutes later: half the hour's target is gone.
        let later = opened
            .checked_add(jiff::SignedDuration::from_mins(31))
            .unwrap();
        let dispatcher = Dispatcher::with_clock(engine, Arc::new(move || later));
        let (trigger, shutdown) = Shutdown::new();
        let ticker = tokio::spawn(run_ticker(dispatcher, Duration::from_secs(3600), shutdown));
        let deadline = Instant::now() + Duration::from_secs(10);
        let reminder = loop {
            let found = store.pending().unwrap().into_iter().find(|o| {
                matches!(&o.action, Action::ToStaff { ticket: Some(1), text, .. }
                    if text.contains("still waiting to be claimed"))
            });
            if let Some(o) = found {
                break o;
            }
            assert!(Instant::now() < deadline, "no reminder from the ticker");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(reminder.action.channel(), Channel::Telegram);
        trigger.trigger();
        ticker.await.unwrap();
        assert_eq!(store.pending().unwrap().len(), 1, "sent once");
    }

    #[tokio::test]
    async fn shutdown_wait_returns_once_triggered() {
        let (trigger, mut shutdown) = Shutdown::new();
        assert!(!shutdown.is_triggered());
        trigger.trigger();
        shutdown.wait().await;
        assert!(shutdown.is_triggered());
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(60));
    }
}
