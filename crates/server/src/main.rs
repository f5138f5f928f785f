//! `switchboard`: the command-line entry point.
//!
//! Commands: `serve` (the gateway), `replay` (recorded webhooks through a built-in connector or
//! a plugin, the way the gateway would, printing the normalized events as JSON lines),
//! `simulate` (a routing scenario) and `plugin new|build|test` (the plugin toolchain).

mod api;
mod config;
mod demo;
mod gateway;
mod plugin;
mod simulate;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{ArgGroup, Parser, Subcommand};
use switchboard_conformance::fixture::{ChannelSpec, load_request};
use switchboard_core::{Timestamp, receive_webhook};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Switchboard messaging gateway and connector tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run recorded webhook requests through a connector and print the events as JSON lines.
    ///
    /// Each REQUEST file is a request in the fixture format ({"method", "url", "headers",
    /// "body" | "body_base64"}) or a whole fixture case, whose "request" is used. The webhook
    /// auth the connector declares is applied with the channel's secrets: a request that fails
    /// it is reported and the command exits non-zero.
    #[command(group(ArgGroup::new("source").required(true).args(["connector", "plugin"])))]
    Replay {
        /// The built-in connector id, e.g. `twilio` or `meta-whatsapp`.
        #[arg(long)]
        connector: Option<String>,
        /// A built plugin instead of a built-in connector: its `.wasm`, with `plugin.toml`
        /// beside it (granted everything it declares).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// The channel file: {"channel_id", "settings", "secrets"} with secrets as
        /// `env:NAME`, `file:PATH` or `value:LITERAL`; a fixture case file works too.
        #[arg(long)]
        channel: PathBuf,
        /// The clock for schemes with a replay window (RFC 3339); defaults to now.
        #[arg(long, value_parser = parse_timestamp)]
        now: Option<Timestamp>,
        /// The recorded requests.
        #[arg(required = true)]
        requests: Vec<PathBuf>,
    },
    /// Run the gateway: webhooks in, routing, outbox, replies out.
    ///
    /// Without `--config` it runs on the embedded default: SQLite in `--data-dir`, listening on
    /// 127.0.0.1:8080 only, no channel (the log says how to add one).
    Serve {
        /// The configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the embedded store lives when the configuration names no store URL.
        #[arg(long, default_value = "switchboard-data")]
        data_dir: PathBuf,
    },
    /// Run the whole gateway locally against a provider simulator, with a scripted customer
    /// and agent, printing the conversation step by step (no provider account needed).
    ///
    /// Starts the real gateway on 127.0.0.1 (SQLite in a temporary directory), a simulator
    /// that answers like the Meta Graph API and Twilio and signs its webhooks like they do,
    /// then plays a WhatsApp customer and the agent `anna` through the agent API. Exits 0 when
    /// every step was seen, 1 naming the step that was not.
    Demo {
        /// Stay up afterwards (URLs, token, curl examples) until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
        /// Keep the configuration, database and log here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run a routing scenario (configuration + timeline) and print the engine's actions as
    /// JSON lines. The format is in docs/scenarios.md; examples are in examples/scenarios/.
    Simulate {
        /// The scenario file (JSON).
        scenario: PathBuf,
    },
    /// Plugin toolchain: scaffold, build and test connector plugins (WebAssembly components).
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
}

fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text).ok_or_else(|| format!("`{text}` is not an RFC 3339 timestamp"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay {
            connector,
            plugin,
            channel,
            now,
            requests,
        } => {
            let connector: std::sync::Arc<dyn switchboard_core::Connector> =
                match (connector, plugin) {
                    (None, Some(file)) => std::sync::Arc::new(plugin::load(&file)?),
                    (Some(id), None) => builtin(&id)?,
                    _ => return Err(anyhow!("give exactly one of --connector and --plugin")),
                };
            replay(connector.as_ref(), &channel, now, &requests)
        }
        Command::Plugin { command } => plugin::run(command),
        Command::Simulate { scenario } => simulate::simulate(&scenario),
        Command::Serve { config, data_dir } => serve(config.as_deref(), data_dir),
        Command::Demo {
            keep_running,
            data_dir,
        } => demo::run(demo::DemoOptions {
            keep_running,
            data_dir,
        }),
    }
}

/// Loads and checks the configuration (every problem listed, exit 2), then runs the gateway.
fn serve(config: Option<&std::path::Path>, data_dir: PathBuf) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let loaded = match config {
        Some(path) => config::Config::load(path),
        None => Ok(config::Config::default()),
    };
    let resolved = loaded.and_then(|mut c| {
        if c.data_dir.is_none() {
            c.data_dir = Some(data_dir);
        }
        c.resolve()
    });
    let resolved = match resolved {
        Ok(resolved) => resolved,
        Err(problems) => {
            eprint!("{problems}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if let Err(e) = runtime.block_on(gateway::serve(resolved)) {
        // Channels on plugins are checked once the plugins are loaded: same report, same code.
        if let Some(problems) = e.downcast_ref::<config::Problems>() {
            eprint!("{problems}");
            return Ok(ExitCode::from(2));
        }
        return Err(e);
    }
    Ok(ExitCode::SUCCESS)
}

/// The built-in connector `connector_id`.
fn builtin(connector_id: &str) -> anyhow::Result<std::sync::Arc<dyn switchboard_core::Connector>> {
    switchboard_providers::builtin(connector_id).ok_or_else(|| {
        let known: Vec<_> = switchboard_providers::builtin_ids().collect();
        anyhow!(
            "unknown connector `{connector_id}`; built in: {}",
            known.join(", ")
        )
    })
}

/// Exit 0 when every request was accepted, 1 when any was rejected, 2 on a usage error.
fn replay(
    connector: &dyn switchboard_core::Connector,
    channel_file: &std::path::Path,
    now: Option<Timestamp>,
    requests: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let spec = ChannelSpec::load(channel_file)?;
    let secrets = spec.resolve_secrets()?;
    let ctx = spec.context();
    let now = now.unwrap_or_else(|| Timestamp::from_system_time(std::time::SystemTime::now()));

    let mut stdout = std::io::stdout().lock();
    let mut rejected = 0;
    for path in requests {
        let request = load_request(path)?;
        match receive_webhook(connector, &ctx, &secrets, &request, now) {
            Ok(outcome) => {
                for event in &outcome.events {
                    let line = serde_json::to_string(event).context("serializing an event")?;
                    writeln!(stdout, "{line}").context("writing to stdout")?;
                }
                eprintln!(
                    "{}: {} event(s); reply {} {}",
                    path.display(),
                    outcome.events.len(),
                    outcome.reply.status,
                    outcome.reply.body
                );
            }
            Err(e) => {
                rejected += 1;
                eprintln!("{}: rejected: {e}", path.display());
            }
        }
    }
    Ok(if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
