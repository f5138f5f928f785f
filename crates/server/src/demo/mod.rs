//! `switchboard demo`: the whole gateway on one machine, with no provider account.
//!
//! It starts, in this process:
//!
//! 1. a **provider simulator** ([`simulator`]) that answers like the Meta Graph API and
//!    Twilio's Messages API, signs its webhooks as they do, and plays the customers;
//! 2. the **real gateway** (the code path of `switchboard serve`) on the embedded default:
//!    SQLite in a temporary directory, listening on 127.0.0.1, with a WhatsApp channel
//!    (`meta-whatsapp`) and an SMS channel (`twilio`) whose `base_url` is the simulator, a
//!    routing configuration (always open, greeting, a "1. Sales / 2. Support" menu with
//!    keywords, one agent) and an agent API token;
//! 3. a **scripted conversation** ([`script`]) between a customer and the agent `anna`, who
//!    uses the agent API ([`agent`]) like an agent desktop would.
//!
//! Each step waits for real evidence (a request the simulator received, an API answer, an
//! event on the agent's stream) and is printed as one numbered line. A step whose evidence
//! does not arrive in time stops the demo with a message naming it (exit 1).
//!
//! The configuration the demo writes (`switchboard.toml`, secrets in files beside it) is an
//! ordinary gateway configuration: with `--keep-running` the demo stays up to be explored
//! with curl.

mod agent;
mod script;
mod simulator;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config;
use simulator::{GatewayWebhooks, MetaAccount, Simulator, TwilioAccount};

/// The WhatsApp channel's id: its webhook is `/webhooks/wa-main`.
pub(crate) const WHATSAPP_CHANNEL: &str = "wa-main";
/// The SMS channel's id: its webhook is `/webhooks/sms-main`.
pub(crate) const SMS_CHANNEL: &str = "sms-main";
/// The agent the script plays.
pub(crate) const AGENT: &str = "anna";
/// How long a step may wait for its evidence.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Command-line options of `switchboard demo`.
#[derive(Clone, Debug, Default)]
pub(crate) struct DemoOptions {
    /// Stay up after the script, printing URLs, tokens and curl examples, until Ctrl-C.
    pub(crate) keep_running: bool,
    /// Where to keep the configuration, secrets, database and log; a temporary directory
    /// (removed at exit) when absent.
    pub(crate) data_dir: Option<PathBuf>,
}

/// Runs the demo: exit 0 when every step was seen, 1 when one was not.
pub(crate) fn run(options: DemoOptions) -> anyhow::Result<ExitCode> {
    // A temporary directory is removed when `_temp` drops, at the end of this function.
    let (_temp, dir) = match &options.data_dir {
        Some(dir) => {
            // The script expects a fresh store: a new contact, no open conversation.
            let db = dir.join("data").join("switchboard.db");
            if db.exists() {
                bail!(
                    "{} holds an earlier demo's database; give a new or empty --data-dir",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (None, dir.clone())
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("switchboard-demo-")
                .tempdir()
                .context("creating a temporary directory")?;
            let path = temp.path().to_path_buf();
            (Some(temp), path)
        }
    };
    init_log(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(demo(&options, &dir, options.data_dir.is_none()));
    // Background tasks (gateway, simulator, status callbacks) stop with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("\ndemo failed: {e:#}");
            let log = dir.join("gateway.log");
            if options.data_dir.is_some() {
                eprintln!("the gateway's log is {}", log.display());
            } else {
                // The temporary directory goes away with us: show the log's end now.
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!("the end of the gateway's log (rerun with --data-dir DIR to keep it):");
                for line in &lines[lines.len().saturating_sub(30)..] {
                    eprintln!("  {line}");
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The gateway logs to `gateway.log` in the demo directory, so the terminal shows the story.
fn init_log(dir: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(dir.join("gateway.log"))
        .with_context(|| format!("creating {}", dir.join("gateway.log").display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}

/// Credentials of this run: random, so nothing here works anywhere else.
struct Credentials {
    meta: MetaAccount,
    twilio: TwilioAccount,
    agent_token: String,
}

impl Credentials {
    fn generate() -> Self {
        Self {
            meta: MetaAccount {
                waba_id: "102290129340398".into(),
                phone_number_id: "106540352242922".into(),
                display_phone_number: "15550783881".into(),
                access_token: format!("EAAG{}", random_hex()),
                app_secret: random_hex(),
            },
            twilio: TwilioAccount {
                account_sid: format!("AC{}", &random_hex()[..32]),
                auth_token: random_hex()[..32].to_owned(),
                number: "+15550006666".into(),
            },
            agent_token: format!("sbt_{}", random_hex()),
        }
    }
}

/// 64 random hex digits (from the standard library's randomly seeded hasher).
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..4)
        .map(|_| {
            let n = std::hash::RandomState::new().build_hasher().finish();
            format!("{n:016x}")
        })
        .collect()
}

async fn demo(options: &DemoOptions, dir: &Path, temporary: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let client = http_client()?;
    let credentials = Credentials::generate();

    // 1. The provider simulator, so the channels can point at it.
    let simulator = Simulator::start(
        credentials.meta.clone(),
        credentials.twilio.clone(),
        client.clone(),
    )
    .await?;

    // 2. The gateway: an ordinary configuration file, then the `serve` code path.
    let listen = free_loopback_port()?;
    let gateway_url = format!("http://{listen}");
    let config_path = write_config(dir, &listen, &gateway_url, &simulator, &credentials)?;
    let resolved = config::Config::load(&config_path)
        .and_then(config::Config::resolve)
        .map_err(|problems| anyhow::anyhow!("the demo configuration is invalid: {problems}"))?;
    // The gateway runs beside the script in this task; if it stops, the demo stops.
    let gateway = std::pin::pin!(crate::gateway::serve(resolved));
    let session = Session {
        options,
        dir,
        temporary,
        started,
        client,
        credentials,
        simulator,
        gateway_url,
        config_path,
    };
    tokio::select! {
        stopped = gateway => match stopped {
            Ok(()) => bail!("the gateway stopped"),
            Err(e) => Err(e.context("the gateway stopped")),
        },
        done = session.run() => done,
    }
}

/// Everything the demo set up, for the part that runs beside the gateway.
struct Session<'a> {
    options: &'a DemoOptions,
    dir: &'a Path,
    temporary: bool,
    started: Instant,
    client: reqwest::Client,
    credentials: Credentials,
    simulator: Simulator,
    gateway_url: String,
    config_path: PathBuf,
}

impl Session<'_> {
    /// Waits for the gateway, runs the script, prints the summary (and, with
    /// `--keep-running`, waits for Ctrl-C).
    async fn run(self) -> anyhow::Result<()> {
        let Self {
            options,
            dir,
            temporary,
            started,
            client,
            credentials,
            simulator,
            gateway_url,
            config_path,
        } = self;
        wait_ready(&client, &gateway_url).await?;
        simulator.connect(GatewayWebhooks {
            whatsapp_url: format!("{gateway_url}/webhooks/{WHATSAPP_CHANNEL}"),
            sms_url: format!("{gateway_url}/webhooks/{SMS_CHANNEL}"),
        });

        println!();
        println!(
            "Switchboard demo: the real gateway, a provider simulator and a scripted conversation."
        );
        println!("  gateway            {gateway_url}  (switchboard serve, SQLite)");
        println!(
            "  provider simulator {}  (answers as the Meta Graph API and Twilio, signs webhooks as they do)",
            simulator.base_url()
        );
        println!(
            "  files              {}{}",
            dir.display(),
            if temporary { "  (removed at exit)" } else { "" }
        );
        println!(
            "  note: the demo sets [transport] dangerous_allow_loopback_for_tests = true so the gateway may send to"
        );
        println!("        its simulator over plain HTTP on 127.0.0.1. Never set it in production.");
        println!();

        let agent = agent::AgentApi::new(client, &gateway_url, AGENT, &credentials.agent_token);
        let conversations = script::run(&simulator, &agent).await?;

        println!();
        print_simulator_summary(&simulator);
        println!();
        println!(
            "Demo finished in {:.1} s: every step above was confirmed by the simulator or the agent API.",
            started.elapsed().as_secs_f64()
        );

        if options.keep_running {
            let next = format!("conv_{}", conversations.len());
            print_explore(&gateway_url, &simulator, &credentials, &config_path, &next);
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            println!("\nstopping.");
        }
        Ok(())
    }
}

/// A plain HTTP client (the demo only talks to 127.0.0.1; TLS by rustls is there for
/// completeness).
fn http_client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default TLS crypto provider; give it rustls's `ring`.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No overall timeout here: the event stream stays open. Calls set their own.
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")
}

/// A free port on 127.0.0.1 for the gateway: the simulator must know the gateway's URL (it
/// calls its webhooks, and Twilio signs the exact URL), so the port is chosen before the
/// gateway starts.
fn free_loopback_port() -> anyhow::Result<std::net::SocketAddr> {
    let probe = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    probe.local_addr().context("finding a free port")
}

/// Waits until the gateway answers `/readyz` (its store is open, its workers run).
async fn wait_ready(client: &reqwest::Client, gateway_url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Ok(response) = client
            .get(format!("{gateway_url}/readyz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the gateway did not become ready at {gateway_url} within {STEP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TOML string literal (quoted and escaped).
fn toml_str(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Writes each secret to its own file under `secrets/` and the gateway configuration beside
/// it; returns the configuration's path.
fn write_config(
    dir: &Path,
    listen: &std::net::SocketAddr,
    gateway_url: &str,
    simulator: &Simulator,
    credentials: &Credentials,
) -> anyhow::Result<PathBuf> {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).with_context(|| format!("creating {}", secrets.display()))?;
    let secret = |name: &str, value: &str| -> anyhow::Result<String> {
        let path = secrets.join(name);
        std::fs::write(&path, value).with_context(|| format!("writing {}", path.display()))?;
        Ok(toml_str(&format!("file:{}", path.display())))
    };
    let meta = &credentials.meta;
    let twilio = &credentials.twilio;
    let text = format!(
        r#"# Written by `switchboard demo`. An ordinary gateway configuration whose providers are
# the demo's simulator; `switchboard serve --config` runs it too (with the simulator gone,
# sends fail and are retried).
listen = {listen}
public_base_url = {gateway_url}
data_dir = {data_dir}

# The simulator is on 127.0.0.1 over plain HTTP, which the transport refuses by default.
# Demo and tests only: never set this in production.
[transport]
dangerous_allow_loopback_for_tests = true

[[channels]]
id = "{WHATSAPP_CHANNEL}"
connector = "meta-whatsapp"
settings = {{ phone_number_id = "{phone_number_id}", waba_id = "{waba_id}", graph_version = "v25.0", base_url = {sim} }}
secrets = {{ app_secret = {app_secret}, verify_token = {verify_token}, access_token = {access_token} }}

[[channels]]
id = "{SMS_CHANNEL}"
connector = "twilio"
settings = {{ account_sid = "{account_sid}", from = "{number}", base_url = {sim}, status_callback_url = {callback} }}
secrets = {{ auth_token = {auth_token} }}

[[api_tokens]]
name = "anna's desktop"
role = "agent"
agent = "{AGENT}"
token = {agent_token}

[[routing.agents]]
id = "{AGENT}"
name = "Anna"

# WhatsApp: no [hours], so always open; a greeting, then the menu.
[[routing.accounts]]
id = "{WHATSAPP_CHANNEL}"
channel = "whatsapp"
dispositions = {{ mandatory = true, options = ["Resolved", "Follow-up"] }}

[routing.accounts.messages]
greeting = "Hello! Thanks for writing to Acme."
menu_prompt = "How can we help? Reply with a number:"
invalid_choice = "Sorry, that is not one of the options."
chat_ended = "Thanks for contacting Acme. This chat has ended."

[[routing.accounts.queues]]
id = "sales"
name = "Sales"
keywords = "buy, price, pricing"
agents = [{{ agent = "{AGENT}" }}]

[[routing.accounts.queues]]
id = "support"
name = "Support"
keywords = "broken, repair"
agents = [{{ agent = "{AGENT}" }}]

# SMS: the same queues; a keyword in the first message skips the menu.
[[routing.accounts]]
id = "{SMS_CHANNEL}"
channel = "sms"
copy_queues_from = "{WHATSAPP_CHANNEL}"

[routing.accounts.messages]
greeting = "Acme here: thanks for your text. An agent will answer shortly."
"#,
        listen = toml_str(&listen.to_string()),
        gateway_url = toml_str(gateway_url),
        data_dir = toml_str(&dir.join("data").display().to_string()),
        phone_number_id = meta.phone_number_id,
        waba_id = meta.waba_id,
        sim = toml_str(&simulator.base_url()),
        app_secret = secret("meta_app_secret", &meta.app_secret)?,
        verify_token = secret("meta_verify_token", &random_hex())?,
        access_token = secret("meta_access_token", &meta.access_token)?,
        account_sid = twilio.account_sid,
        number = twilio.number,
        callback = toml_str(&format!("{gateway_url}/webhooks/{SMS_CHANNEL}")),
        auth_token = secret("twilio_auth_token", &twilio.auth_token)?,
        agent_token = secret("anna_api_token", &credentials.agent_token)?,
    );
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The record of the simulator: what the gateway actually sent to the provider APIs.
fn print_simulator_summary(simulator: &Simulator) {
    let requests = simulator.requests();
    println!(
        "The provider simulator received {} API request(s):",
        requests.len()
    );
    for (i, r) in requests.iter().enumerate() {
        let auth = if r.authorized { "ok" } else { "REFUSED" };
        println!(
            "  {:>2}. {:<7} {}  auth={} {}  to={}  text={:?}",
            i + 1,
            match r.api {
                simulator::Api::Graph => "Graph",
                simulator::Api::Twilio => "Twilio",
            },
            r.request_line,
            r.auth_scheme,
            auth,
            r.to,
            r.text
        );
    }
}

/// `--keep-running`: how to look around.
fn print_explore(
    gateway_url: &str,
    simulator: &Simulator,
    credentials: &Credentials,
    config_path: &Path,
    next: &str,
) {
    let sim = simulator.base_url();
    let token = &credentials.agent_token;
    let auth = format!("-H 'Authorization: Bearer {token}'");
    let api = format!("{gateway_url}/api/v1");
    println!(
        r#"
Still running (--keep-running). Press Ctrl-C to stop (the demo's files go with it unless
--data-dir was given).

  gateway             {gateway_url}
  agent API           {api}  (agent "{AGENT}", bearer token below)
  anna's token        {token}
  provider simulator  {sim}
  configuration       {config}

Play both sides with curl. In a second terminal, watch anna's event stream:
  curl -sN {auth} {api}/events
A new WhatsApp customer writes, then picks "1. Sales" (the simulator signs as Meta would):
  curl -s {sim}/simulator/whatsapp -d '{{"from": "15551230009", "name": "Lee", "text": "hi"}}'
  curl -s {sim}/simulator/whatsapp -d '{{"from": "15551230009", "name": "Lee", "text": "1"}}'
anna accepts the offer (the `offer` event names the conversation: {next}), answers, ends:
  curl -s -X POST {auth} {api}/conversations/{next}/accept
  curl -s -X POST {auth} -H 'Content-Type: application/json' \
       -d '{{"content": {{"type": "text", "text": "Hello Lee!"}}}}' {api}/conversations/{next}/messages
  curl -s -X POST {auth} -H 'Content-Type: application/json' \
       -d '{{"dispositions": ["Resolved"]}}' {api}/conversations/{next}/end
What anna has, and what the gateway sent to the providers:
  curl -s {auth} {api}/conversations
  curl -s {auth} {api}/conversations/{next}
  curl -s {sim}/simulator/requests"#,
        config = config_path.display(),
    );
}
