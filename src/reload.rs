//! Hot reload of the intents: while `frontdesk run` or `frontdesk chat` is
//! serving, a background thread looks at the intents directory every
//! `intents_reload` (2 s by default) and, when an intent file was changed,
//! added or removed, loads the directory again, builds a new matcher and
//! swaps the pair into the [`Engine`] in one step.
//!
//! - **Change detection** ([`Snapshot`], [`ChangeDetector`]): the list of
//!   `*.toml` files (the ones the loader reads) with each one's modification
//!   time and size. A change is acted on only once the directory has looked
//!   the same twice in a row, [`DEBOUNCE`] apart, so a file is not read while
//!   an editor is still writing it.
//! - **Keep the last good set** ([`Reloader`]): a set that does not load (a
//!   TOML error, a bad regex, a duplicate id, an empty directory…) is logged
//!   with the loader's `file:line` errors and the engine keeps answering with
//!   what it had. The same broken state is reported once; the next change
//!   (the fix) is loaded again.
//! - **Atomic swap**: the engine holds its intents and matcher as one
//!   `Arc<Knowledge>` behind a lock and takes a clone of it for each event,
//!   so an event is handled wholly with the old set or wholly with the new.
//!   Building happens on this module's own thread, never on the async
//!   runtime's workers; the lock is held only for the pointer swap.
//!
//! - **Upgrade** ([`Watcher::start_upgrading`]): with a sentence model
//!   configured, the bot starts answering on the lexical matcher (built in
//!   about a second) and this thread builds the matcher with the model's
//!   tier (seconds to minutes: every example goes through the model), then
//!   swaps it in as a reload does, and only then watches for changes, so a
//!   reload never races the upgrade.
//!
//! The loading itself is the caller's (`cli::build_knowledge`): the same
//! function the bot starts with, with the same
//! [`MatcherFactory`](crate::nlu::embed::MatcherFactory), so a configured
//! sentence model is loaded once and reused by every rebuild.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::engine::{Engine, Knowledge};
use crate::intents::IntentsError;

/// How long a changed directory must stay the same before it is loaded.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// What the watcher notes of one intent file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// The state of an intents directory as far as reloading cares: its
/// `*.toml` files with their modification times and sizes, or the fact that
/// it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `None`: the directory could not be read.
    files: Option<BTreeMap<PathBuf, Stamp>>,
}

impl Snapshot {
    /// Looks at `dir` now. Never fails: an unreadable directory is a state
    /// of its own (loading it then reports why).
    pub fn take(dir: &Path) -> Snapshot {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Snapshot { files: None };
        };
        let files = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .filter_map(|p| {
                // Follows links, as the loader does.
                let meta = std::fs::metadata(&p).ok()?;
                meta.is_file().then(|| {
                    let stamp = Stamp {
                        modified: meta.modified().ok(),
                        len: meta.len(),
                    };
                    (p, stamp)
                })
            })
            .collect();
        Snapshot { files: Some(files) }
    }

    /// The number of intent files seen (0 when the directory is unreadable).
    pub fn files(&self) -> usize {
        self.files.as_ref().map_or(0, BTreeMap::len)
    }
}

/// What [`ChangeDetector::observe`] makes of the latest look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The directory is as it was when last loaded (or tried).
    Unchanged,
    /// It changed since the previous look: look again after [`DEBOUNCE`].
    Settling,
    /// It changed and then held still: load it now.
    Changed,
}

/// Decides from successive [`Snapshot`]s when to reload: a change must be
/// seen twice in a row before it counts, and a state that was loaded, or
/// tried and failed, is not loaded again.
#[derive(Debug, Clone)]
pub struct ChangeDetector {
    /// The state last loaded or tried.
    loaded: Snapshot,
    /// A changed state seen once, waiting to be seen again.
    pending: Option<Snapshot>,
}

impl ChangeDetector {
    /// A detector for a directory that was loaded in state `loaded`.
    pub fn new(loaded: Snapshot) -> ChangeDetector {
        ChangeDetector {
            loaded,
            pending: None,
        }
    }

    /// Takes in the latest look at the directory. On
    /// [`Observation::Changed`], `now` counts as loaded from then on,
    /// whether or not loading it succeeds.
    pub fn observe(&mut self, now: Snapshot) -> Observation {
        if now == self.loaded {
            self.pending = None;
            return Observation::Unchanged;
        }
        if self.pending.as_ref() == Some(&now) {
            self.pending = None;
            self.loaded = now;
            return Observation::Changed;
        }
        self.pending = Some(now);
        Observation::Settling
    }
}

/// Loads an intents directory into a new [`Knowledge`].
pub type LoadFn = dyn Fn(&Path) -> Result<Knowledge, IntentsError> + Send + Sync;

/// Why a reload did not happen (the engine kept its intents).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The intents do not load: the loader's errors, with file and line.
    #[error(transparent)]
    Intents(#[from] IntentsError),
    /// Building panicked (a bug); the message is the panic's.
    #[error("building the matcher failed: {0}")]
    Panicked(String),
}

/// Loads the intents directory again and swaps the result into the engine,
/// keeping the engine's set when the new one does not load.
pub struct Reloader {
    engine: Arc<Engine>,
    dir: PathBuf,
    load: Box<LoadFn>,
}

impl Reloader {
    /// A reloader of `dir` into `engine`, loading with `load`.
    pub fn new(engine: Arc<Engine>, dir: PathBuf, load: Box<LoadFn>) -> Reloader {
        Reloader { engine, dir, load }
    }

    /// The directory reloaded.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the directory and, when it loads, swaps it in; returns the
    /// number of intents now in use. On error the engine's set is untouched.
    /// Either way the outcome is logged.
    pub fn reload(&self) -> Result<usize, ReloadError> {
        self.load_and_swap(Outcome::Reload)
    }

    /// Builds the engine's matcher again from the directory, as a reload
    /// does, for a bot that started on the lexical matcher while its
    /// sentence model's tier was built (`load` builds with the model):
    /// swaps it in when it builds, and says so. On error the engine keeps
    /// the lexical matcher (the next change of the intents is loaded with
    /// the model again).
    pub fn upgrade(&self) -> Result<usize, ReloadError> {
        self.load_and_swap(Outcome::Upgrade)
    }

    fn load_and_swap(&self, outcome: Outcome) -> Result<usize, ReloadError> {
        let started = Instant::now();
        let loaded = catch_unwind(AssertUnwindSafe(|| (self.load)(&self.dir)))
            .map_err(|panic| ReloadError::Panicked(panic_message(panic.as_ref())));
        let error = match loaded {
            Ok(Ok(knowledge)) => {
                let n = knowledge.intents.len();
                self.engine.replace_knowledge(knowledge);
                let millis = started.elapsed().as_millis() as u64;
                match outcome {
                    Outcome::Reload => {
                        tracing::info!(millis, "reloaded {n} intents from {}", self.dir.display())
                    }
                    Outcome::Upgrade => tracing::info!(
                        millis,
                        "the semantic tier is built: answering the {n} intents with it from now on"
                    ),
                }
                return Ok(n);
            }
            Ok(Err(e)) => e.into(),
            Err(e) => e,
        };
        match outcome {
            Outcome::Reload => tracing::error!(
                "the intents in {} changed but were not reloaded; still answering with the {} intents loaded before. {error}",
                self.dir.display(),
                self.engine.knowledge().intents.len()
            ),
            Outcome::Upgrade => tracing::error!(
                "the semantic tier was not built for the intents in {}; still answering with the lexical matcher. {error}",
                self.dir.display()
            ),
        }
        Err(error)
    }
}

/// What a [`Reloader`]'s build is for, as its log lines say.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// The intents changed.
    Reload,
    /// The bot started on the lexical matcher; this is the model's tier.
    Upgrade,
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// How long dropping a [`Watcher`] waits for a build in progress before
/// leaving it to end with the process (a build cannot be interrupted, and a
/// sentence model's can take minutes; the store is flushed after every
/// change, so nothing waits on it).
pub const STOP_WAIT: Duration = Duration::from_secs(1);

/// The watcher thread; stopped when dropped (waited for up to
/// [`STOP_WAIT`]).
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `reloader`'s directory every `interval`. `loaded` is
    /// the directory's state when the engine's current set was loaded (take
    /// it *before* loading, so a change made during the load is seen).
    pub fn start(
        reloader: Reloader,
        loaded: Snapshot,
        interval: Duration,
    ) -> std::io::Result<Watcher> {
        Watcher::spawn(move |stopped| watch(&reloader, loaded, interval, stopped))
    }

    /// Starts a thread that first [upgrades](Reloader::upgrade) the
    /// engine's matcher (the bot started on the lexical one), then, with
    /// an `interval`, watches the directory as [`Watcher::start`] does.
    pub fn start_upgrading(
        reloader: Reloader,
        interval: Option<Duration>,
    ) -> std::io::Result<Watcher> {
        Watcher::spawn(move |stopped| {
            // Looked at before loading: a change made during the build is seen.
            let loaded = Snapshot::take(reloader.dir());
            // The outcome is logged by `upgrade`.
            let _ = reloader.upgrade();
            if let Some(interval) = interval {
                watch(&reloader, loaded, interval, stopped);
            }
        })
    }

    fn spawn(body: impl FnOnce(&mpsc::Receiver<()>) + Send + 'static) -> std::io::Result<Watcher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("intents-reload".into())
            .spawn(move || body(&stopped))?;
        Ok(Watcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread, which then ends, unless it
        // is building: that is waited for up to `STOP_WAIT`.
        drop(self.stop.take());
        let Some(thread) = self.thread.take() else {
            return;
        };
        let waited = Instant::now();
        while !thread.is_finished() && waited.elapsed() < STOP_WAIT {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !thread.is_finished() {
            tracing::debug!("a matcher build is still running: not waiting for it");
            return;
        }
        if thread.join().is_err() {
            tracing::error!("the intents reload thread panicked");
        }
    }
}

/// The watcher's loop: look, settle, reload; until `stopped` is signalled
/// or its sender dropped.
fn watch(reloader: &Reloader, loaded: Snapshot, interval: Duration, stopped: &mpsc::Receiver<()>) {
    tracing::debug!(
        dir = %reloader.dir().display(),
        seconds = interval.as_secs_f64(),
        "watching the intents for changes"
    );
    let mut detector = ChangeDetector::new(loaded);
    let mut wait = interval;
    loop {
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        wait = match detector.observe(Snapshot::take(reloader.dir())) {
            Observation::Unchanged => interval,
            Observation::Settling => DEBOUNCE.min(interval),
            Observation::Changed => {
                // The outcome is logged by `reload`.
                let _ = reloader.reload();
                interval
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSettings;
    use crate::intents::IntentSet;
    use crate::nlu::MatcherConfig;
    use crate::store::{SledStore, Store};
    use std::fs::{self, File};

    const HOURS: &str = r#"[[intent]]
id = "opening_hours"
examples.en = ["When are you open?", "What time do you close?"]
answer.en = "We are open 9 to 5."
"#;

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).unwrap();
    }

    /// Sets a file's modification time `secs` seconds after the epoch.
    fn touch(path: &Path, secs: u64) {
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    fn load(dir: &Path) -> Result<Knowledge, IntentsError> {
        let intents = IntentSet::load_dir(dir, &["en".to_string()])?;
        Ok(Knowledge::build(intents, MatcherConfig::default()))
    }

    fn engine(dir: &Path) -> Arc<Engine> {
        let store: Arc<dyn Store> = Arc::new(SledStore::temporary().unwrap());
        Arc::new(Engine::new(
            store,
            load(dir).unwrap(),
            EngineSettings::from_config(&crate::config::Config::default()),
        ))
    }

    fn answer(engine: &Engine, id: &str) -> Option<String> {
        engine
            .knowledge()
            .intents
            .get(id)
            .and_then(|i| i.answer.get("en").cloned())
    }

    #[test]
    fn snapshots_see_edits_new_and_removed_files_but_not_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "a.toml", HOURS);
        touch(&d.join("a.toml"), 1_000);
        let first = Snapshot::take(d);
        assert_eq!(first.files(), 1);
        assert_eq!(Snapshot::take(d), first, "nothing changed");

        // Not intent files: other extensions, editor leftovers, directories.
        write(d, "notes.txt", "x");
        write(d, ".a.toml.swp", "x");
        write(d, "a.toml~", "x");
        fs::create_dir(d.join("old.toml")).unwrap();
        assert_eq!(Snapshot::take(d), first);

        // Same size, new time.
        touch(&d.join("a.toml"), 2_000);
        let touched = Snapshot::take(d);
        assert_ne!(touched, first);
        // New size, same time.
        write(d, "a.toml", &format!("{HOURS}\n"));
        touch(&d.join("a.toml"), 2_000);
        let grown = Snapshot::take(d);
        assert_ne!(grown, touched);
        // A new file, then its removal.
        write(d, "b.toml", HOURS);
        let added = Snapshot::take(d);
        assert_eq!(added.files(), 2);
        assert_ne!(added, grown);
        fs::remove_file(d.join("b.toml")).unwrap();
        assert_eq!(Snapshot::take(d), grown);
        // A directory that is gone, and back.
        let moved = d.with_extension("moved");
        fs::rename(d, &moved).unwrap();
        let gone = Snapshot::take(d);
        assert_eq!(gone.files(), 0);
        assert_ne!(gone, grown);
        fs::rename(&moved, d).unwrap();
        assert_eq!(Snapshot::take(d), grown);
    }

    #[test]
    fn a_change_counts_once_it_holds_still() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "a.toml", HOURS);
        touch(&d.join("a.toml"), 1_000);
        let mut detector = ChangeDetector::new(Snapshot::take(d));
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Unchanged);

        // An editor still writing: every look differs from the one before.
        for (i, secs) in [2_000, 2_001, 2_002].into_iter().enumerate() {
            write(d, "a.toml", &format!("{HOURS}{}", "\n".repeat(i)));
            touch(&d.join("a.toml"), secs);
            assert_eq!(detector.observe(Snapshot::take(d)), Observation::Settling);
        }
        // It stopped: the second identical look loads it, once.
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Changed);
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Unchanged);
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Unchanged);

        // A change undone before it settled is no change.
        let before = Snapshot::take(d);
        touch(&d.join("a.toml"), 3_000);
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Settling);
        touch(&d.join("a.toml"), 2_002);
        assert_eq!(Snapshot::take(d), before);
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Unchanged);
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Unchanged);

        // A removed file and a new one are changes too.
        write(d, "b.toml", HOURS);
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Settling);
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Changed);
        fs::remove_file(d.join("b.toml")).unwrap();
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Settling);
        assert_eq!(detector.observe(Snapshot::take(d)), Observation::Changed);
    }

    #[test]
    fn a_broken_change_keeps_the_last_good_set_and_the_fix_loads() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "hours.toml", HOURS);
        let engine = engine(d);
        let reloader = Reloader::new(engine.clone(), d.to_path_buf(), Box::new(load));
        let before = engine.knowledge();

        // A good change is swapped in.
        write(d, "hours.toml", &HOURS.replace("9 to 5", "8 to 8"));
        assert_eq!(reloader.reload().unwrap(), 1);
        assert_eq!(
            answer(&engine, "opening_hours").unwrap(),
            "We are open 8 to 8."
        );
        assert!(!Arc::ptr_eq(&before, &engine.knowledge()));
        let good = engine.knowledge();

        // Each broken change fails with the loader's file:line error and
        // leaves the engine's set as it was (the very same Arc).
        let broken = [
            ("hours.toml", HOURS.replace("answer.en =", "answer.en = [")),
            ("hours.toml", format!("{HOURS}patterns = ['(unclosed']\n")),
            ("dup.toml", HOURS.replace("9 to 5", "never")),
            (
                "hours.toml",
                HOURS.replace("anwser", "x").replace("answer", "anwser"),
            ),
        ];
        for (file, text) in &broken {
            write(d, file, text);
            let e = reloader.reload().unwrap_err().to_string();
            assert!(e.contains(".toml:"), "{e}");
            assert!(Arc::ptr_eq(&good, &engine.knowledge()), "{e}");
            assert_eq!(
                answer(&engine, "opening_hours").unwrap(),
                "We are open 8 to 8."
            );
            let _ = fs::remove_file(d.join("dup.toml"));
            write(d, "hours.toml", &HOURS.replace("9 to 5", "8 to 8"));
        }
        // Fixed: loads again.
        assert_eq!(reloader.reload().unwrap(), 1);
        assert!(!Arc::ptr_eq(&good, &engine.knowledge()));
    }

    #[test]
    fn an_emptied_or_missing_directory_keeps_the_last_good_set() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "hours.toml", HOURS);
        let engine = engine(d);
        let reloader = Reloader::new(engine.clone(), d.to_path_buf(), Box::new(load));
        fs::remove_file(d.join("hours.toml")).unwrap();
        let e = reloader.reload().unwrap_err().to_string();
        assert!(e.contains("no intent files"), "{e}");
        assert_eq!(engine.knowledge().intents.len(), 1);
        let gone = Reloader::new(engine.clone(), d.join("nowhere"), Box::new(load));
        let e = gone.reload().unwrap_err().to_string();
        assert!(e.contains("cannot read the intents directory"), "{e}");
        assert_eq!(
            answer(&engine, "opening_hours").unwrap(),
            "We are open 9 to 5."
        );
        // And the directory filled again loads.
        write(d, "hours.toml", HOURS);
        assert_eq!(reloader.reload().unwrap(), 1);
    }

    #[test]
    fn a_panicking_build_is_an_error_not_a_dead_thread() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "hours.toml", HOURS);
        let engine = engine(dir.path());
        let reloader = Reloader::new(
            engine.clone(),
            dir.path().to_path_buf(),
            Box::new(|_: &Path| panic!("matcher bug")),
        );
        let e = reloader.reload().unwrap_err().to_string();
        assert!(e.contains("matcher bug"), "{e}");
        assert_eq!(engine.knowledge().intents.len(), 1);
    }

    /// Polls `done` every few milliseconds until it holds, with a
    /// generous bound (no timing asserted).
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "waited too long for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A loader that counts its builds.
    fn counting() -> (Arc<std::sync::atomic::AtomicUsize>, Box<LoadFn>) {
        let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = builds.clone();
        let load = Box::new(move |dir: &Path| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            load(dir)
        });
        (builds, load)
    }

    fn count(builds: &std::sync::atomic::AtomicUsize) -> usize {
        builds.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn an_upgrade_swaps_in_the_full_build_then_watches_for_changes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "hours.toml", HOURS);
        let engine = engine(d);
        let started_with = engine.knowledge();
        let (builds, full) = counting();
        let reloader = Reloader::new(engine.clone(), d.to_path_buf(), full);
        let watcher = Watcher::start_upgrading(reloader, Some(Duration::from_millis(20))).unwrap();
        wait_until("the upgrade", || {
            !Arc::ptr_eq(&started_with, &engine.knowledge())
        });
        assert_eq!(count(&builds), 1);
        // Then it watches: a change is loaded with the same loader.
        write(d, "hours.toml", &HOURS.replace("9 to 5", "10 to 4"));
        wait_until("the reload", || {
            answer(&engine, "opening_hours").as_deref() == Some("We are open 10 to 4.")
        });
        drop(watcher);
        assert_eq!(count(&builds), 2);

        // Without hot reload, the thread upgrades once and ends.
        let engine = self::engine(d);
        let started_with = engine.knowledge();
        let (builds, full) = counting();
        let reloader = Reloader::new(engine.clone(), d.to_path_buf(), full);
        let watcher = Watcher::start_upgrading(reloader, None).unwrap();
        wait_until("the upgrade", || {
            !Arc::ptr_eq(&started_with, &engine.knowledge())
        });
        write(d, "hours.toml", HOURS);
        std::thread::sleep(Duration::from_millis(100));
        drop(watcher);
        assert_eq!(count(&builds), 1, "no reload without an interval");
        assert_eq!(
            answer(&engine, "opening_hours").unwrap(),
            "We are open 10 to 4."
        );
    }

    #[test]
    fn a_failed_upgrade_keeps_the_lexical_set_and_the_next_change_loads() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "hours.toml", HOURS);
        let engine = engine(d);
        let started_with = engine.knowledge();
        // The directory broke between the first load and the upgrade.
        write(
            d,
            "hours.toml",
            &HOURS.replace("answer.en =", "answer.en = ["),
        );
        let reloader = Reloader::new(engine.clone(), d.to_path_buf(), Box::new(load));
        let e = reloader.upgrade().unwrap_err().to_string();
        assert!(e.contains("hours.toml:"), "{e}");
        assert!(Arc::ptr_eq(&started_with, &engine.knowledge()));
        assert_eq!(
            answer(&engine, "opening_hours").unwrap(),
            "We are open 9 to 5."
        );
        // A panicking build is an error too, and changes nothing.
        let panicking = Reloader::new(
            engine.clone(),
            d.to_path_buf(),
            Box::new(|_: &Path| panic!("model exploded")),
        );
        let e = panicking.upgrade().unwrap_err().to_string();
        assert!(e.contains("model exploded"), "{e}");
        assert!(Arc::ptr_eq(&started_with, &engine.knowledge()));

        // Watching after a failed upgrade: the fix is loaded.
        let watcher = Watcher::start_upgrading(reloader, Some(Duration::from_millis(20))).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        write(d, "hours.toml", &HOURS.replace("9 to 5", "7 to 7"));
        wait_until("the fix", || {
            answer(&engine, "opening_hours").as_deref() == Some("We are open 7 to 7.")
        });
        drop(watcher);
    }

    #[test]
    fn dropping_the_watcher_does_not_wait_for_a_long_build() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "hours.toml", HOURS);
        let engine = engine(d);
        let started_with = engine.knowledge();
        // A build that takes as long as the test wants: it waits for `release`.
        let (release, gate) = mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(gate);
        let (building, started) = mpsc::channel::<()>();
        let building = std::sync::Mutex::new(building);
        let slow = move |dir: &Path| {
            let _ = building.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv();
            load(dir)
        };
        let reloader = Reloader::new(engine.clone(), d.to_path_buf(), Box::new(slow));
        let watcher = Watcher::start_upgrading(reloader, Some(Duration::from_millis(20))).unwrap();
        started.recv_timeout(Duration::from_secs(60)).unwrap();
        // Returns although the build is still running (it would never end
        // without `release`).
        drop(watcher);
        assert!(Arc::ptr_eq(&started_with, &engine.knowledge()));
        // Released: the build ends and is swapped in; the thread then stops
        // (its stop signal was given) instead of watching.
        release.send(()).unwrap();
        wait_until("the released build", || {
            !Arc::ptr_eq(&started_with, &engine.knowledge())
        });
    }

    #[test]
    fn the_watcher_reloads_a_change_and_stops_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "hours.toml", HOURS);
        let loaded = Snapshot::take(d);
        let engine = engine(d);
        let reloader = Reloader::new(engine.clone(), d.to_path_buf(), Box::new(load));
        let watcher = Watcher::start(reloader, loaded, Duration::from_millis(20)).unwrap();
        write(d, "hours.toml", &HOURS.replace("9 to 5", "10 to 4"));
        // Poll for the outcome, with a generous bound (no timing asserted).
        let deadline = Instant::now() + Duration::from_secs(60);
        while answer(&engine, "opening_hours").as_deref() != Some("We are open 10 to 4.") {
            assert!(Instant::now() < deadline, "the change was never loaded");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(watcher);
        // Stopped: a later change is not loaded.
        write(d, "hours.toml", &HOURS.replace("9 to 5", "never"));
        let before = engine.knowledge();
        std::thread::sleep(Duration::from_millis(100));
        assert!(Arc::ptr_eq(&before, &engine.knowledge()));
    }
}
