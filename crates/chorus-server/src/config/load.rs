//! The layers over the defaults, in order: a TOML file, the `CHORUS_*`
//! environment variables, then the command-line [`Overrides`]; each wins over
//! the ones before it, setting by setting.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{Context, bail};

use super::sections::{Config, LogFormat};

/// Values given on the command line; `None` leaves the setting alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub http_bind: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub media_bind: Option<SocketAddr>,
    pub media_announce: Option<IpAddr>,
    pub media_workers: Option<usize>,
    pub demo: Option<bool>,
    pub log: Option<String>,
}

/// Environment variables read by [`Config::apply_env`].
pub const ENV_VARS: &[&str] = &[
    "CHORUS_HTTP_BIND",
    "CHORUS_PUBLIC_URL",
    "CHORUS_TLS_CERT_FILE",
    "CHORUS_TLS_KEY_FILE",
    "CHORUS_MEDIA_BIND",
    "CHORUS_MEDIA_ANNOUNCE",
    "CHORUS_MEDIA_WORKERS",
    "CHORUS_MEDIA_TRANSPORT",
    "CHORUS_API_KEY",
    "CHORUS_API_SECRET",
    "CHORUS_AUTO_CREATE_ROOMS",
    "CHORUS_MAX_ROOMS",
    "CHORUS_EGRESS_SHARDS",
    "CHORUS_DRAIN_TIMEOUT_SECS",
    "CHORUS_DEMO",
    "CHORUS_LOG",
    "CHORUS_LOG_FORMAT",
    "CHORUS_WEBHOOK_URLS",
    "CHORUS_TURN_URLS",
    "CHORUS_TURN_SECRET",
    "CHORUS_TURN_CREDENTIAL_TTL_SECS",
    "RUST_LOG",
];

impl Config {
    /// Defaults, then `file`, then the environment (`env` looks a variable up),
    /// then `overrides`; then checked.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> anyhow::Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                Self::from_toml(&text)
                    .with_context(|| format!("in config file {}", path.display()))?
            }
            None => Self::default(),
        };
        config.apply_env(env)?;
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    /// Applies the `CHORUS_*` variables that are set and not empty.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            value
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("{name}={value:?}: {e}"))
        }
        if let Some(v) = var("CHORUS_HTTP_BIND") {
            self.http.bind = parse("CHORUS_HTTP_BIND", &v)?;
        }
        if let Some(v) = var("CHORUS_PUBLIC_URL") {
            self.http.public_url = Some(v);
        }
        if let Some(v) = var("CHORUS_TLS_CERT_FILE") {
            self.http.tls_cert_file = Some(v.into());
        }
        if let Some(v) = var("CHORUS_TLS_KEY_FILE") {
            self.http.tls_key_file = Some(v.into());
        }
        if let Some(v) = var("CHORUS_MEDIA_BIND") {
            self.media.bind = parse("CHORUS_MEDIA_BIND", &v)?;
        }
        if let Some(v) = var("CHORUS_MEDIA_ANNOUNCE") {
            self.media.announce = Some(parse("CHORUS_MEDIA_ANNOUNCE", &v)?);
        }
        if let Some(v) = var("CHORUS_MEDIA_WORKERS") {
            self.media.workers = parse("CHORUS_MEDIA_WORKERS", &v)?;
        }
        if let Some(v) = var("CHORUS_MEDIA_TRANSPORT") {
            self.media.transport = Some(v);
        }
        if let Some(v) = var("CHORUS_API_KEY") {
            self.api.key = v;
        }
        if let Some(v) = var("CHORUS_API_SECRET") {
            self.api.secret = v;
        }
        if let Some(v) = var("CHORUS_AUTO_CREATE_ROOMS") {
            self.rooms.auto_create = parse_bool("CHORUS_AUTO_CREATE_ROOMS", &v)?;
        }
        if let Some(v) = var("CHORUS_MAX_ROOMS") {
            self.rooms.max_rooms = parse("CHORUS_MAX_ROOMS", &v)?;
        }
        if let Some(v) = var("CHORUS_EGRESS_SHARDS") {
            self.rooms.egress_shards = parse("CHORUS_EGRESS_SHARDS", &v)?;
        }
        if let Some(v) = var("CHORUS_DRAIN_TIMEOUT_SECS") {
            self.rooms.drain_timeout_secs = parse("CHORUS_DRAIN_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = var("CHORUS_DEMO") {
            self.demo.enabled = parse_bool("CHORUS_DEMO", &v)?;
        }
        if let Some(v) = var("CHORUS_WEBHOOK_URLS") {
            self.webhooks.urls = list(&v);
        }
        if let Some(v) = var("CHORUS_TURN_URLS") {
            self.turn.urls = list(&v);
        }
        if let Some(v) = var("CHORUS_TURN_SECRET") {
            self.turn.secret = v;
        }
        if let Some(v) = var("CHORUS_TURN_CREDENTIAL_TTL_SECS") {
            self.turn.credential_ttl_secs = parse("CHORUS_TURN_CREDENTIAL_TTL_SECS", &v)?;
        }
        if let Some(v) = var("CHORUS_LOG_FORMAT") {
            self.log.format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => bail!("CHORUS_LOG_FORMAT must be text or json, got {v:?}"),
            };
        }
        if let Some(v) = var("CHORUS_LOG").or_else(|| var("RUST_LOG")) {
            self.log.filter = v;
        }
        Ok(())
    }

    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = o.http_bind {
            self.http.bind = v;
        }
        if let Some(v) = &o.public_url {
            self.http.public_url = Some(v.clone());
        }
        if let Some(v) = o.media_bind {
            self.media.bind = v;
        }
        if let Some(v) = o.media_announce {
            self.media.announce = Some(v);
        }
        if let Some(v) = o.media_workers {
            self.media.workers = v;
        }
        if let Some(v) = o.demo {
            self.demo.enabled = v;
        }
        if let Some(v) = &o.log {
            self.log.filter = v.clone();
        }
    }
}

/// A comma-separated list; blank entries are left out.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => bail!("{name}={other:?}: expected true or false"),
    }
}
