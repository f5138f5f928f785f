//! `switchboard-loadgen`: fires pre-built, signed Meta WhatsApp webhooks at a gateway and
//! reports throughput, latency percentiles and every status code; with `--baseline` it runs the
//! same load against an in-process plain axum handler answering 200, in the same run, and
//! prints the ratio. Two subcommands measure outbound sends: `provider` (a fake Twilio
//! Messages API) and `sends` (queues proactive messages through the gateway's API and waits
//! until they are sent). See docs/benchmarks.md.

mod baseline;
mod client;
mod load;
mod payload;
mod provider;
mod report;
mod sends;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::load::{Outcome, Plan};
use crate::payload::PayloadSpec;
use crate::report::Summary;

/// Load generator for `POST /webhooks/{channel_id}` with signed Meta WhatsApp webhooks (no
/// subcommand), and for outbound sends (`provider`, `sends`).
#[derive(Parser, Debug)]
#[command(
    name = "switchboard-loadgen",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    ingest: IngestArgs,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// A fake Twilio Messages API on loopback that counts requests (for `sends`).
    Provider(provider::ProviderArgs),
    /// Queues proactive template sends through `POST /api/v1/messages` and measures how fast
    /// the gateway sends them.
    Sends(sends::SendsArgs),
}

/// Webhook ingest (no subcommand).
#[derive(clap::Args, Debug)]
struct IngestArgs {
    /// The webhook URL of the server under test (loopback only), e.g.
    /// `http://127.0.0.1:8080/webhooks/wa-bench`. Without it only `--baseline` runs.
    #[arg(long)]
    url: Option<String>,
    /// Also measure an in-process plain axum handler answering 200 (127.0.0.1:0) with the
    /// same load, and print the ratio.
    #[arg(long)]
    baseline: bool,
    /// Runtime threads of the baseline server (default: the number of CPUs, like the gateway).
    #[arg(long)]
    baseline_threads: Option<usize>,
    /// Runtime threads of the client (default: the number of CPUs).
    #[arg(long)]
    client_threads: Option<usize>,
    /// Requests per run (each a distinct webhook).
    #[arg(short = 'n', long, default_value_t = 20_000)]
    requests: usize,
    /// Connections, each used by one worker with HTTP/1.1 keep-alive.
    #[arg(short = 'c', long, default_value_t = 64)]
    concurrency: usize,
    /// Fixed arrival rate (requests/s, open loop); without it the run is closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// No request starts after this many seconds (per run).
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// A request unanswered after this many seconds counts as a timeout.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Alternate baseline and gateway runs this many times (less sensitive to drift).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The channel's app secret (prefer the environment variable).
    #[arg(long, env = "SWITCHBOARD_LOADGEN_APP_SECRET", hide_env_values = true)]
    app_secret: Option<String>,
    /// The channel's `phone_number_id`.
    #[arg(long, default_value = "277321005464405")]
    phone_number_id: String,
    /// The channel's `waba_id`.
    #[arg(long, default_value = "264937493375603")]
    waba_id: String,
    /// Distinct senders the messages come from.
    #[arg(long, default_value_t = 1000)]
    contacts: u32,
    /// Approximate body size in bytes.
    #[arg(long, default_value_t = 1200)]
    body_bytes: usize,
    /// Prefix of the generated wamids (default: from the clock, so runs never collide).
    #[arg(long)]
    id_prefix: Option<String>,
    /// Append the wamids the gateway acknowledged (2xx) to this file, one per line.
    #[arg(long)]
    acked_ids: Option<PathBuf>,
    /// Write the summaries and the ratio as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

fn parse_target(url: &str) -> anyhow::Result<Target> {
    let uri: hyper::Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("only http:// URLs (loopback) are supported");
    }
    let authority = uri.authority().context("the URL has no host")?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let ip: std::net::IpAddr = if host == "localhost" {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        host.parse()
            .with_context(|| format!("`{host}`: give a loopback IP address"))?
    };
    if !ip.is_loopback() {
        bail!("`{ip}` is not a loopback address: this tool only loads local servers");
    }
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        host: authority.as_str().to_owned(),
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Provider(args)) => provider::run(&args),
        Some(Command::Sends(args)) => sends::run(args, clock_prefix()),
        None => run(&cli.ingest),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// A prefix for generated ids from the clock and the process id, so runs never collide.
fn clock_prefix() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{now:x}{:x}", std::process::id())
}

fn run(cli: &IngestArgs) -> anyhow::Result<()> {
    let target = cli.url.as_deref().map(parse_target).transpose()?;
    if target.is_none() && !cli.baseline {
        bail!("give --url, --baseline or both");
    }
    if cli.requests == 0 || cli.concurrency == 0 || cli.rounds == 0 {
        bail!("--requests, --concurrency and --rounds must be at least 1");
    }
    if cli.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number");
    }
    if !(cli.duration.is_finite()
        && cli.duration > 0.0
        && cli.timeout.is_finite()
        && cli.timeout > 0.0)
    {
        bail!("--duration and --timeout must be positive numbers of seconds");
    }
    let app_secret = cli.app_secret.clone().filter(|s| !s.is_empty()).context(
        "give the channel's app secret: SWITCHBOARD_LOADGEN_APP_SECRET (or --app-secret)",
    )?;
    let spec = PayloadSpec {
        app_secret,
        phone_number_id: cli.phone_number_id.clone(),
        waba_id: cli.waba_id.clone(),
        contacts: cli.contacts,
        body_bytes: cli.body_bytes,
    };
    let prefix = cli.id_prefix.clone().unwrap_or_else(clock_prefix);

    let server = if cli.baseline {
        Some(baseline::start(cli.baseline_threads.unwrap_or_else(cpus))?)
    } else {
        None
    };
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.unwrap_or_else(cpus).max(1))
        .thread_name("loadgen")
        .enable_all()
        .build()?;

    let mode = match cli.rate {
        Some(rate) => format!("open loop at {rate}/s"),
        None => "closed loop".to_owned(),
    };
    println!(
        "load: {} requests x {} round(s), {} connections, {mode}, bound {}s, timeout {}s, bodies ~{} B",
        cli.requests, cli.rounds, cli.concurrency, cli.duration, cli.timeout, cli.body_bytes
    );
    let plan = |addr: SocketAddr, host: String, path: String| Plan {
        addr,
        host,
        path,
        concurrency: cli.concurrency,
        rate: cli.rate,
        max_duration: Duration::from_secs_f64(cli.duration),
        request_timeout: Duration::from_secs_f64(cli.timeout),
    };

    let mut gateway_runs = Vec::new();
    let mut baseline_runs = Vec::new();
    let mut acked = Vec::new();
    for round in 1..=cli.rounds {
        if let Some(server) = &server {
            let requests = Arc::new(payload::build(
                &spec,
                &format!("{prefix}b{round}"),
                cli.requests,
            )?);
            let p = plan(
                server.addr,
                server.addr.to_string(),
                "/webhooks/baseline".to_owned(),
            );
            let result = client.block_on(load::run(p, requests))?;
            let summary = Summary::new(&format!("baseline#{round}"), &result);
            println!("{summary}");
            baseline_runs.push(summary);
        }
        if let Some(t) = &target {
            let requests = Arc::new(payload::build(
                &spec,
                &format!("{prefix}g{round}"),
                cli.requests,
            )?);
            let p = plan(t.addr, t.host.clone(), t.path.clone());
            let result = client.block_on(load::run(p, requests.clone()))?;
            let summary = Summary::new(&format!("gateway#{round}"), &result);
            println!("{summary}");
            acked.extend(result.samples.iter().filter_map(|s| match s.outcome {
                Outcome::Status(200..=299) => Some(requests[s.index].wamid.clone()),
                _ => None,
            }));
            gateway_runs.push(summary);
        }
    }
    drop(client);
    drop(server);

    let total = |runs: &[Summary]| -> f64 {
        let ok: usize = runs.iter().map(|s| s.ok).sum();
        let secs: f64 = runs.iter().map(|s| s.elapsed_s).sum();
        if secs > 0.0 { ok as f64 / secs } else { 0.0 }
    };
    let ratio = (!gateway_runs.is_empty() && !baseline_runs.is_empty()).then(|| {
        let g = total(&gateway_runs);
        let b = total(&baseline_runs);
        println!(
            "ratio gateway/baseline (2xx/s): {:.3}  ({g:.0}/s vs {b:.0}/s over {} round(s))",
            g / b,
            cli.rounds
        );
        g / b
    });
    let failed: usize = gateway_runs.iter().map(Summary::failed).sum();
    if failed > 0 {
        println!("WARNING: {failed} gateway request(s) without a 2xx answer (see outcomes)");
    }

    if let Some(path) = &cli.acked_ids {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut text = String::with_capacity(acked.len() * 64);
        for id in &acked {
            text.push_str(id);
            text.push('\n');
        }
        file.write_all(text.as_bytes())?;
    }
    if let Some(path) = &cli.json {
        let value = serde_json::json!({
            "requests": cli.requests,
            "concurrency": cli.concurrency,
            "rate": cli.rate,
            "rounds": cli.rounds,
            "body_bytes": cli.body_bytes,
            "gateway": gateway_runs.iter().map(Summary::to_json).collect::<Vec<_>>(),
            "baseline": baseline_runs.iter().map(Summary::to_json).collect::<Vec<_>>(),
            "gateway_ok_per_s": total(&gateway_runs),
            "baseline_ok_per_s": total(&baseline_runs),
            "ratio": ratio,
            "gateway_failed": failed,
            "acked": acked.len(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        let t = parse_target("http://127.0.0.1:8080/webhooks/wa?x=1");
        assert!(matches!(t, Ok(ref t) if t.path == "/webhooks/wa?x=1" && t.addr.port() == 8080));
        assert!(parse_target("http://localhost:9/webhooks/wa").is_ok());
        assert!(parse_target("http://[::1]:9/webhooks/wa").is_ok());
        assert!(parse_target("http://10.0.0.1:80/webhooks/wa").is_err());
        assert!(parse_target("https://127.0.0.1/webhooks/wa").is_err());
        assert!(parse_target("http://example.com/webhooks/wa").is_err());
    }

    #[test]
    fn the_ingest_flags_and_the_subcommands_parse() {
        let ingest =
            Cli::try_parse_from(["x", "--url", "http://127.0.0.1:1/webhooks/a", "-n", "5"]);
        assert!(matches!(ingest, Ok(Cli { command: None, ref ingest }) if ingest.requests == 5));
        let provider = Cli::try_parse_from(["x", "provider", "--latency-ms", "3"]);
        assert!(matches!(
            provider,
            Ok(Cli {
                command: Some(Command::Provider(_)),
                ..
            })
        ));
        let sends = Cli::try_parse_from([
            "x",
            "sends",
            "--api",
            "http://127.0.0.1:1",
            "--channel",
            "sms-bench",
            "-n",
            "50",
        ]);
        assert!(matches!(
            sends,
            Ok(Cli {
                command: Some(Command::Sends(_)),
                ..
            })
        ));
        assert!(Cli::try_parse_from(["x", "-n", "5", "provider"]).is_err());
    }

    #[test]
    fn a_baseline_run_answers_200_for_every_request() -> anyhow::Result<()> {
        let server = baseline::start(1)?;
        let spec = PayloadSpec {
            app_secret: "s".into(),
            phone_number_id: "1".into(),
            waba_id: "2".into(),
            contacts: 3,
            body_bytes: 1200,
        };
        let requests = Arc::new(payload::build(&spec, "t", 200)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let plan = Plan {
            addr: server.addr,
            host: server.addr.to_string(),
            path: "/webhooks/x".into(),
            concurrency: 4,
            rate: Some(2000.0),
            max_duration: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
        };
        let result = runtime.block_on(load::run(plan, requests))?;
        let summary = Summary::new("b", &result);
        assert_eq!((summary.sent, summary.ok, summary.not_sent), (200, 200, 0));
        assert!(summary.elapsed_s >= 0.09, "the rate was honoured");
        Ok(())
    }
}
