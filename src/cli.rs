//! The command line: `chat`, `check`, `report`, `tickets`. Each command loads
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
use crate::report::{Report, tickets_text};
use crate::store::{SledStore, Store, StoreError};

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
    /// Figures for the owner: conversations, escalations, ticket times, ratings
    Report(ReportArgs),
    /// List tickets with their status history
    Tickets(TicketsArgs),
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
    #[command(flatten)]
    data: DataArg,
    /// One JSON object instead of text
    #[arg(long)]
    json: bool,
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
    /// JSON output failed.
    #[error("cannot produce JSON: {0}")]
    Json(#[from] serde_json::Error),
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
    let started = Instant::now();
    let intents = IntentSet::load_dir(dir, &config.languages)?;
    if !intents.warnings.is_empty() {
        tracing::warn!(
            warnings = intents.warnings.len(),
            "the intents have warnings; `frontdesk check` lists them"
        );
    }
    let knowledge = Knowledge::build(intents, config.matcher);
    tracing::info!(
        intents = knowledge.intents.len(),
        millis = started.elapsed().as_millis() as u64,
        "intents loaded and matcher built"
    );
    Ok(knowledge)
}

fn chat(config: Config, args: ChatArgs) -> Result<ExitCode, CliError> {
    let knowledge = load_knowledge(&config, &intents_dir(&config, &args.intents))?;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&data_dir(&config, &args.data))?);
    let engine = Engine::new(store, knowledge, EngineSettings::from_config(&config));
    let identity = ConsoleIdentity {
        customer_id: args.customer_id,
        customer_name: args.customer_name,
        staff_name: args.staff_name,
    };
    let interactive = std::io::stdin().is_terminal();
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
    let knowledge = load_knowledge(&config, &intents_dir(&config, &args.intents))?;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&data_dir(&config, &args.data))?);
    let engine = Arc::new(Engine::new(
        store,
        knowledge,
        EngineSettings::from_config(&config),
    ));
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
    let knowledge = Knowledge::build(intents, config.matcher);
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
        "  matcher built in {:.1} ms",
        build.as_secs_f64() * 1000.0
    )?;
    let mut warnings: Vec<String> = intents.warnings.iter().map(|w| w.to_string()).collect();
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
    let store = open_existing(&config, &args.data)?;
    let report = Report::compute(&store)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(out, "{}", report.to_text())?;
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
