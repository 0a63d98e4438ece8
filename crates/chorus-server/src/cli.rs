//! The `chorus` command line.
//!
//! - `chorus` or `chorus serve`: run the server (embedded development defaults);
//! - `chorus token create --room R --identity I ...`: print an access token;
//! - `chorus config print`: print the effective configuration as TOML.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chorus_api::token::{MAX_TTL_SECS, NewToken};
use chorus_protocol::{Grants, TrackSource};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, DEV_API_SECRET, LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "chorus",
    version,
    about = "Chorus: an SFU for group calls",
    long_about = "Chorus: an SFU for group calls.\n\n\
        Without a command, runs the server with development defaults: HTTP on 127.0.0.1:7880 \
        (demo page at /), media on UDP 127.0.0.1:7882, API key `devkey`.\n\n\
        Settings come from built-in defaults, then --config FILE (TOML), then CHORUS_* \
        environment variables, then flags."
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE", env = "CHORUS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeFlags),
    /// Access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a user access token signed with the configured API key.
    Create(TokenArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML.
    Print {
        /// Print secrets instead of `<redacted>`.
        #[arg(long)]
        show_secrets: bool,
        #[command(flatten)]
        flags: ServeFlags,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeFlags {
    /// HTTP address (control API, signaling, demo page) [env: CHORUS_HTTP_BIND].
    #[arg(long, value_name = "ADDR")]
    pub http_bind: Option<SocketAddr>,
    /// Base URL clients reach the server at [env: CHORUS_PUBLIC_URL].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// UDP address for all media [env: CHORUS_MEDIA_BIND].
    #[arg(long, value_name = "ADDR")]
    pub media_bind: Option<SocketAddr>,
    /// IP announced in ICE candidates (behind NAT) [env: CHORUS_MEDIA_ANNOUNCE].
    #[arg(long, value_name = "IP")]
    pub media_announce: Option<IpAddr>,
    /// Media I/O threads, 0 = one per core [env: CHORUS_MEDIA_WORKERS].
    #[arg(long, value_name = "N")]
    pub media_workers: Option<usize>,
    /// Serve the demo token endpoint [env: CHORUS_DEMO].
    #[arg(long, overrides_with = "no_demo")]
    pub demo: bool,
    /// Do not serve the demo token endpoint.
    #[arg(long, overrides_with = "demo")]
    pub no_demo: bool,
    /// Log filter, e.g. `debug` or `chorus_room=debug,info` [env: CHORUS_LOG, RUST_LOG].
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

impl ServeFlags {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            http_bind: self.http_bind,
            public_url: self.public_url.clone(),
            media_bind: self.media_bind,
            media_announce: self.media_announce,
            media_workers: self.media_workers,
            demo: match (self.demo, self.no_demo) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            log: self.log.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Room the token admits to.
    #[arg(long)]
    pub room: String,
    /// Identity of the user.
    #[arg(long)]
    pub identity: String,
    /// Display name (defaults to the identity).
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime: seconds, or with a unit: 90s, 15m, 1h, 1d (at most 24 h).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: u64,
    /// May receive but not publish media or data.
    #[arg(long, conflicts_with = "sources")]
    pub subscribe_only: bool,
    /// Sources it may publish (comma-separated: microphone,camera,screen_share); default all.
    #[arg(long, value_delimiter = ',', value_parser = parse_source)]
    pub sources: Vec<TrackSource>,
}

impl TokenArgs {
    pub fn grants(&self) -> Grants {
        if self.subscribe_only {
            Grants::subscribe_only()
        } else {
            Grants {
                can_publish_sources: self.sources.clone(),
                ..Grants::default()
            }
        }
    }
}

/// `90`, `90s`, `15m`, `1h`, `1d` → seconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 15m, 1h"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}; use s, m, h or d")),
    };
    let secs = n.saturating_mul(scale);
    if secs == 0 || secs > MAX_TTL_SECS {
        return Err(format!("ttl must be between 1 s and {MAX_TTL_SECS} s"));
    }
    Ok(secs)
}

pub fn parse_source(text: &str) -> Result<TrackSource, String> {
    TrackSource::ALL
        .into_iter()
        .find(|s| s.as_str() == text.trim())
        .ok_or_else(|| {
            let names: Vec<_> = TrackSource::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown source {text:?}; one of {}", names.join(", "))
        })
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_cli(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chorus: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let load = |flags: &ServeFlags| Config::load(cli.config.as_deref(), &env, &flags.overrides());
    match cli.command {
        None => serve(load(&ServeFlags::default())?),
        Some(Command::Serve(ref flags)) => serve(load(flags)?),
        Some(Command::Token {
            command: TokenCommand::Create(ref args),
        }) => {
            let config = load(&ServeFlags::default())?;
            let token = create_token(&config, args, unix_now())?;
            println!("{token}");
            Ok(())
        }
        Some(Command::Config {
            command:
                ConfigCommand::Print {
                    show_secrets,
                    ref flags,
                },
        }) => {
            let config = load(flags)?;
            let config = if show_secrets {
                config
            } else {
                config.redacted()
            };
            print!("{}", config.to_toml()?);
            Ok(())
        }
    }
}

pub fn create_token(config: &Config, args: &TokenArgs, now_unix: u64) -> anyhow::Result<String> {
    let grant = NewToken {
        room: args.room.clone(),
        identity: args.identity.clone(),
        name: args.name.clone().unwrap_or_default(),
        grants: args.grants(),
        ttl_secs: args.ttl,
    };
    if grant.room.is_empty() || grant.identity.is_empty() {
        bail!("--room and --identity must not be empty");
    }
    config
        .keys()
        .mint(&config.api.key, grant, now_unix)
        .context("cannot mint the token")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn init_logging(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("bad log filter {filter:?}"))?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let started = match format {
        LogFormat::Text => logs.try_init(),
        // The room and the participant a line is about come from the spans it is in:
        // all of them, under `spans`.
        LogFormat::Json => logs.json().with_span_list(true).try_init(),
    };
    started.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(&config.log.filter, config.log.format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_until_signal(config))
}

async fn serve_until_signal(config: Config) -> anyhow::Result<()> {
    let dev_secret = config.api.secret == DEV_API_SECRET;
    if dev_secret {
        warn!(
            "using the built-in development API credentials; set CHORUS_API_KEY and \
             CHORUS_API_SECRET (or [api] in --config) for anything but local development"
        );
    }
    if config.media.transport.is_some() {
        warn!(
            "media.transport (CHORUS_MEDIA_TRANSPORT) is obsolete: Chorus's own transport is \
             the only one; delete the setting"
        );
    }
    if config.demo.enabled && !config.http.bind.ip().is_loopback() {
        warn!(
            "the demo is enabled on {}: anyone who reaches it can get a token (--no-demo)",
            config.http.bind
        );
    }
    let shutdown = CancellationToken::new();
    let api_key = config.api.key.clone();
    let demo = config.demo.enabled;
    let server = crate::run(config, shutdown).await?;
    tokio::spawn(stop_on_signal(server.control()));

    println!("Chorus is listening on {}", server.public_url);
    println!("  signaling:   {}", server.signaling_url());
    println!(
        "  control API: {}/v1 (OpenAPI at /v1/openapi.json)",
        server.public_url
    );
    println!("  media:       udp {}", server.media_addr);
    if demo {
        println!("  demo page:   {}/", server.public_url);
    }
    println!("  API key:     {api_key}");
    if dev_secret {
        println!(
            "  API secret:  {DEV_API_SECRET}  (development credentials: do not use in production)"
        );
    }
    server.stopped().await;
    Ok(())
}

/// SIGTERM (what a process supervisor sends for a rolling restart) drains the server;
/// Ctrl-C (SIGINT) stops it now. A signal after that stops a drain now; one more exits
/// at once.
async fn stop_on_signal(server: crate::ServerControl) {
    if signal().await == Signal::Terminate {
        let drain = server.drain();
        let left = drain.deadline_unix_ms.saturating_sub(drain.since_unix_ms);
        info!(
            within_ms = left,
            "SIGTERM: draining (again to stop now, a third time to exit at once)"
        );
        signal().await;
    }
    info!("stopping (again to exit at once)");
    server.shutdown();
    signal().await;
    warn!("another signal; exiting now");
    std::process::exit(130);
}

#[derive(Debug, PartialEq, Eq)]
enum Signal {
    Interrupt,
    Terminate,
}

async fn signal() -> Signal {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => Signal::Interrupt,
        _ = term => Signal::Terminate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses() {
        Cli::try_parse_from(["chorus"]).unwrap();
        let cli = Cli::try_parse_from([
            "chorus",
            "serve",
            "--http-bind",
            "0.0.0.0:80",
            "--no-demo",
            "--config",
            "x.toml",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        let Some(Command::Serve(flags)) = cli.command else {
            panic!("serve")
        };
        let o = flags.overrides();
        assert_eq!(o.http_bind, "0.0.0.0:80".parse().ok());
        assert_eq!(o.demo, Some(false));
        assert_eq!(o.media_bind, None);
        assert!(Cli::try_parse_from(["chorus", "bogus"]).is_err());
        Cli::try_parse_from(["chorus", "config", "print", "--show-secrets"]).unwrap();
    }

    #[test]
    fn last_demo_flag_wins() {
        let demo = |args: &[&str]| {
            let mut argv = vec!["chorus", "serve"];
            argv.extend_from_slice(args);
            let Some(Command::Serve(flags)) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("serve")
            };
            flags.overrides().demo
        };
        assert_eq!(demo(&[]), None);
        assert_eq!(demo(&["--demo"]), Some(true));
        assert_eq!(demo(&["--no-demo"]), Some(false));
        assert_eq!(demo(&["--no-demo", "--demo"]), Some(true));
        assert_eq!(demo(&["--demo", "--no-demo"]), Some(false));
    }

    #[test]
    fn ttl_parsing() {
        let cases = [
            ("90", Ok(90)),
            ("90s", Ok(90)),
            ("15m", Ok(900)),
            ("1h", Ok(3600)),
            ("1d", Ok(86_400)),
            ("0s", Err(())),
            ("2d", Err(())),
            ("1w", Err(())),
            ("h", Err(())),
            ("", Err(())),
            ("99999999999999999999d", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_ttl(text).map_err(|_| ()), want, "{text:?}");
        }
    }

    #[test]
    fn token_create_args() {
        let args = |argv: &[&str]| {
            let mut all = vec![
                "chorus",
                "token",
                "create",
                "--room",
                "r",
                "--identity",
                "i",
            ];
            all.extend_from_slice(argv);
            match Cli::try_parse_from(all).map(|c| c.command) {
                Ok(Some(Command::Token {
                    command: TokenCommand::Create(args),
                })) => Ok(args),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            }
        };
        let a = args(&[]).unwrap();
        assert_eq!(a.ttl, 3600);
        assert_eq!(a.grants(), Grants::default());
        let a = args(&["--sources", "microphone,camera", "--ttl", "15m"]).unwrap();
        assert_eq!(a.ttl, 900);
        assert_eq!(
            a.grants().can_publish_sources,
            vec![TrackSource::Microphone, TrackSource::Camera]
        );
        let a = args(&["--subscribe-only"]).unwrap();
        assert_eq!(a.grants(), Grants::subscribe_only());
        assert!(args(&["--subscribe-only", "--sources", "camera"]).is_err());
        assert!(args(&["--sources", "webcam"]).is_err());

        let config = Config::default();
        let now = 1_800_000_000;
        let token = create_token(&config, &args(&["--name", "Ivy"]).unwrap(), now).unwrap();
        let claims = config.keys().verify(&token, now).unwrap();
        assert_eq!(
            (
                claims.iss.as_str(),
                claims.sub.as_str(),
                claims.name.as_str()
            ),
            ("devkey", "i", "Ivy")
        );
        assert_eq!(claims.exp, now + 3600);
    }
}
