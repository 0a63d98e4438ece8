//! The server's settings: embedded defaults, overridden by a TOML file, then by
//! `CHORUS_*` environment variables, then by command-line flags.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use chorus_api::{ApiConfig, ApiSecret, Keys};
use chorus_protocol::control::MAX_PARTICIPANTS_CEILING;
use chorus_room::RoomConfig;
use serde::{Deserialize, Serialize};

/// API key of the embedded development configuration.
pub const DEV_API_KEY: &str = "devkey";
/// API secret of the embedded development configuration. Public knowledge:
/// the server refuses it on anything but a loopback address.
pub const DEV_API_SECRET: &str = "devsecret-change-me-0123456789abcdef";
/// Shortest API secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpSection,
    pub media: MediaSection,
    pub rooms: RoomsSection,
    pub api: ApiSection,
    pub demo: DemoSection,
    pub log: LogSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Address of the HTTP server (control API, signaling, demo page). Port 0 picks one.
    pub bind: SocketAddr,
    /// Base URL clients reach the server at; derived from the bound address when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSection {
    /// UDP address all media flows through (one port for every participant).
    pub bind: SocketAddr,
    /// Address announced in ICE candidates, when clients reach the server at another one (NAT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announce: Option<IpAddr>,
    /// Media I/O threads; 0 means one per core.
    pub workers: usize,
    /// Silence on a media connection before its participant shows as disconnected.
    pub ice_disconnected_timeout_ms: u64,
    /// Further silence before the participant is removed.
    pub ice_failed_timeout_ms: u64,
    /// A media connection not up this long after its negotiation (or ICE restart) is
    /// reported to the client as unreachable.
    pub ice_connect_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsSection {
    /// Create a room when someone joins one that does not exist.
    pub auto_create: bool,
    /// Participant limit of rooms created without one (at most 350).
    pub default_max_participants: u32,
    /// Most rooms the server holds at once.
    pub max_rooms: usize,
    /// A room nobody is in for this long is closed.
    pub empty_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// The primary API key: `chorus token create` and the demo sign with it.
    pub key: String,
    pub secret: String,
    /// More keys the control API accepts and whose tokens verify (e.g. during rotation).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_keys: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoSection {
    /// Serve `POST /demo/token`, which gives anyone a token. Development only.
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `tracing` filter, e.g. `info` or `chorus_room=debug,info`.
    pub filter: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 7880)),
            public_url: None,
        }
    }
}

impl Default for MediaSection {
    fn default() -> Self {
        let rooms = RoomConfig::default();
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 7882)),
            announce: None,
            workers: rooms.media_workers,
            ice_disconnected_timeout_ms: millis(rooms.ice_disconnected_timeout),
            ice_failed_timeout_ms: millis(rooms.ice_failed_timeout),
            ice_connect_timeout_ms: millis(rooms.ice_connect_timeout),
        }
    }
}

impl Default for RoomsSection {
    fn default() -> Self {
        let rooms = RoomConfig::default();
        Self {
            auto_create: rooms.auto_create_rooms,
            default_max_participants: rooms.default_max_participants,
            max_rooms: rooms.max_rooms,
            empty_timeout_secs: rooms.empty_room_timeout.as_secs(),
        }
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            key: DEV_API_KEY.into(),
            secret: DEV_API_SECRET.into(),
            extra_keys: BTreeMap::new(),
        }
    }
}

impl Default for DemoSection {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Chorus at info; the WebRTC stack at error only: it logs every state change at info and
/// every undecryptable or replayed packet at warn, which a misbehaving client could use to flood the log.
pub const DEFAULT_LOG_FILTER: &str = "info,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_sctp=error,rtc_srtp=error,rtc_interceptor=error";

impl Default for LogSection {
    fn default() -> Self {
        Self {
            filter: DEFAULT_LOG_FILTER.into(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

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
    "CHORUS_MEDIA_BIND",
    "CHORUS_MEDIA_ANNOUNCE",
    "CHORUS_MEDIA_WORKERS",
    "CHORUS_API_KEY",
    "CHORUS_API_SECRET",
    "CHORUS_AUTO_CREATE_ROOMS",
    "CHORUS_MAX_ROOMS",
    "CHORUS_DEMO",
    "CHORUS_LOG",
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

    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
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
        if let Some(v) = var("CHORUS_MEDIA_BIND") {
            self.media.bind = parse("CHORUS_MEDIA_BIND", &v)?;
        }
        if let Some(v) = var("CHORUS_MEDIA_ANNOUNCE") {
            self.media.announce = Some(parse("CHORUS_MEDIA_ANNOUNCE", &v)?);
        }
        if let Some(v) = var("CHORUS_MEDIA_WORKERS") {
            self.media.workers = parse("CHORUS_MEDIA_WORKERS", &v)?;
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
        if let Some(v) = var("CHORUS_DEMO") {
            self.demo.enabled = parse_bool("CHORUS_DEMO", &v)?;
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

    pub fn validate(&self) -> anyhow::Result<()> {
        check_key(&self.api.key, &self.api.secret)?;
        for (key, secret) in &self.api.extra_keys {
            check_key(key, secret)?;
        }
        if self.uses_dev_secret() && !self.http.bind.ip().is_loopback() {
            bail!(
                "the development API secret is public: set api.secret (or CHORUS_API_SECRET) \
                 before binding HTTP to {}",
                self.http.bind
            );
        }
        if let Some(url) = &self.http.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("http.public_url must start with http:// or https://, got {url:?}");
        }
        let max = self.rooms.default_max_participants;
        if max == 0 || max > MAX_PARTICIPANTS_CEILING {
            bail!(
                "rooms.default_max_participants must be between 1 and {MAX_PARTICIPANTS_CEILING}, got {max}"
            );
        }
        if self.rooms.max_rooms == 0 {
            bail!("rooms.max_rooms must be at least 1");
        }
        let m = &self.media;
        for (name, ms) in [
            ("ice_disconnected_timeout_ms", m.ice_disconnected_timeout_ms),
            ("ice_failed_timeout_ms", m.ice_failed_timeout_ms),
            ("ice_connect_timeout_ms", m.ice_connect_timeout_ms),
        ] {
            if ms == 0 {
                bail!("media.{name} must be at least 1");
            }
        }
        Ok(())
    }

    /// Whether the API secret is the published development one.
    pub fn uses_dev_secret(&self) -> bool {
        self.api.secret == DEV_API_SECRET
            || self.api.extra_keys.values().any(|s| s == DEV_API_SECRET)
    }

    pub fn room_config(&self) -> RoomConfig {
        RoomConfig {
            media_bind: self.media.bind,
            media_announce: self.media.announce,
            media_workers: self.media.workers,
            auto_create_rooms: self.rooms.auto_create,
            default_max_participants: self.rooms.default_max_participants,
            max_rooms: self.rooms.max_rooms,
            empty_room_timeout: Duration::from_secs(self.rooms.empty_timeout_secs),
            ice_disconnected_timeout: Duration::from_millis(self.media.ice_disconnected_timeout_ms),
            ice_failed_timeout: Duration::from_millis(self.media.ice_failed_timeout_ms),
            ice_connect_timeout: Duration::from_millis(self.media.ice_connect_timeout_ms),
        }
    }

    pub fn keys(&self) -> Keys {
        self.api.extra_keys.iter().fold(
            Keys::new(
                self.api.key.clone(),
                ApiSecret::new(self.api.secret.clone()),
            ),
            |keys, (key, secret)| keys.with(key.clone(), ApiSecret::new(secret.clone())),
        )
    }

    /// `public_url` is the configured one, or [`Config::public_url_for`] the bound address.
    pub fn api_config(&self, public_url: String) -> ApiConfig {
        ApiConfig {
            keys: self.keys(),
            demo_enabled: self.demo.enabled,
            public_url,
        }
    }

    /// The configured public URL, or one derived from the HTTP address
    /// (an unspecified address becomes loopback).
    pub fn public_url_for(&self, http_addr: SocketAddr) -> String {
        if let Some(url) = &self.http.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let mut addr = http_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
                SocketAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{addr}")
    }

    /// A copy fit for printing: secrets replaced.
    pub fn redacted(&self) -> Self {
        let mut config = self.clone();
        let hide = |s: &mut String| {
            if *s != DEV_API_SECRET {
                *s = "<redacted>".into();
            }
        };
        hide(&mut config.api.secret);
        config.api.extra_keys.values_mut().for_each(hide);
        config
    }
}

fn check_key(key: &str, secret: &str) -> anyhow::Result<()> {
    if key.is_empty() || key.contains(':') || key.chars().any(|c| c.is_control()) {
        bail!("API key {key:?} must be non-empty, without ':' or control characters");
    }
    if secret.len() < MIN_SECRET_BYTES {
        bail!(
            "the secret of API key {key:?} is {} bytes; use at least {MIN_SECRET_BYTES} \
             (e.g. `openssl rand -hex 32`)",
            secret.len()
        );
    }
    Ok(())
}

fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => bail!("{name}={other:?}: expected true or false"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "file-secret-0123456789abcdef0123456789";

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn no_env() -> impl Fn(&str) -> Option<String> {
        env(&[])
    }

    /// A file in the temp directory, removed on drop.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write_file(text: &str) -> TempFile {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "chorus-config-test-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    #[test]
    fn embedded_defaults_are_the_dev_setup() {
        let config = Config::load(None, &no_env(), &Overrides::default()).unwrap();
        assert_eq!(config.http.bind, addr("127.0.0.1:7880"));
        assert_eq!(config.media.bind, addr("127.0.0.1:7882"));
        assert_eq!(config.api.key, DEV_API_KEY);
        assert_eq!(config.api.secret, DEV_API_SECRET);
        assert!(config.demo.enabled);
        assert!(config.uses_dev_secret());
        assert_eq!(config.log.filter, DEFAULT_LOG_FILTER);
        let rooms = config.room_config();
        let defaults = RoomConfig::default();
        assert_eq!(rooms.max_rooms, defaults.max_rooms);
        assert_eq!(rooms.empty_room_timeout, defaults.empty_room_timeout);
        assert_eq!(rooms.ice_failed_timeout, defaults.ice_failed_timeout);
    }

    /// Each layer wins over the ones before it, setting by setting.
    #[test]
    fn precedence_defaults_file_env_flags() {
        let file = write_file(&format!(
            r#"
            [http]
            bind = "127.0.0.1:9000"
            [media]
            bind = "127.0.0.1:9002"
            workers = 3
            [api]
            key = "filekey"
            secret = "{SECRET}"
            [demo]
            enabled = false
            [log]
            filter = "warn"
            "#
        ));
        let env = env(&[
            ("CHORUS_MEDIA_BIND", "127.0.0.1:9102"),
            ("CHORUS_MEDIA_WORKERS", "5"),
            ("CHORUS_DEMO", "yes"),
            ("CHORUS_LOG", "debug"),
            ("RUST_LOG", "trace"),
            ("CHORUS_HTTP_BIND", ""),
        ]);
        let flags = Overrides {
            media_workers: Some(7),
            log: Some("error".into()),
            ..Overrides::default()
        };
        let config = Config::load(Some(file.path()), &env, &flags).unwrap();
        // file only
        assert_eq!(config.http.bind, addr("127.0.0.1:9000"));
        assert_eq!(config.api.key, "filekey");
        assert_eq!(config.api.secret, SECRET);
        // default only
        assert_eq!(config.rooms, RoomsSection::default());
        // env over file
        assert_eq!(config.media.bind, addr("127.0.0.1:9102"));
        assert!(config.demo.enabled);
        // flags over env over file
        assert_eq!(config.media.workers, 7);
        assert_eq!(config.log.filter, "error");
        assert!(!config.uses_dev_secret());
    }

    #[test]
    fn log_filter_from_rust_log_when_chorus_log_is_unset() {
        let config =
            Config::load(None, &env(&[("RUST_LOG", "trace")]), &Overrides::default()).unwrap();
        assert_eq!(config.log.filter, "trace");
    }

    #[test]
    fn secrets_from_the_environment() {
        let config = Config::load(
            None,
            &env(&[("CHORUS_API_KEY", "prod"), ("CHORUS_API_SECRET", SECRET)]),
            &Overrides {
                http_bind: Some(addr("0.0.0.0:7880")),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.api.key, "prod");
        assert!(config.keys().check_secret("prod", SECRET));
    }

    /// A test case: name, environment, what the error must mention.
    type Refusal<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn refusals() {
        let cases: [Refusal; 6] = [
            (
                "dev secret on a public address",
                &[("CHORUS_HTTP_BIND", "0.0.0.0:7880")],
                "development API secret",
            ),
            (
                "short secret",
                &[("CHORUS_API_SECRET", "short")],
                "at least 32",
            ),
            ("colon in key", &[("CHORUS_API_KEY", "a:b")], "without ':'"),
            (
                "bad address",
                &[("CHORUS_MEDIA_BIND", "nowhere")],
                "CHORUS_MEDIA_BIND",
            ),
            ("bad bool", &[("CHORUS_DEMO", "maybe")], "CHORUS_DEMO"),
            ("bad url", &[("CHORUS_PUBLIC_URL", "ftp://x")], "public_url"),
        ];
        for (name, vars, want) in cases {
            let err = Config::load(None, &env(vars), &Overrides::default()).unwrap_err();
            assert!(
                format!("{err:#}").contains(want),
                "{name}: {err:#} does not mention {want:?}"
            );
        }
    }

    #[test]
    fn unknown_settings_are_refused() {
        let file = write_file("[http]\nbnid = \"127.0.0.1:1\"\n");
        let err = Config::load(Some(file.path()), &no_env(), &Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("bnid"), "{err:#}");
    }

    #[test]
    fn zero_ice_timeouts_are_refused() {
        type Set = fn(&mut Config);
        let cases: [(&str, Set); 3] = [
            ("ice_disconnected_timeout_ms", |c| {
                c.media.ice_disconnected_timeout_ms = 0
            }),
            ("ice_failed_timeout_ms", |c| {
                c.media.ice_failed_timeout_ms = 0
            }),
            ("ice_connect_timeout_ms", |c| {
                c.media.ice_connect_timeout_ms = 0
            }),
        ];
        Config::default().validate().unwrap();
        for (name, set) in cases {
            let mut config = Config::default();
            set(&mut config);
            let err = config.validate().unwrap_err();
            assert!(format!("{err:#}").contains(name), "{name}: {err:#}");
        }
    }

    #[test]
    fn printed_config_reads_back() {
        let mut config = Config::default();
        config.media.announce = "203.0.113.7".parse::<IpAddr>().ok();
        config.http.public_url = Some("https://sfu.example.com".into());
        config
            .api
            .extra_keys
            .insert("old".into(), SECRET.to_owned());
        let text = config.to_toml().unwrap();
        assert_eq!(Config::from_toml(&text).unwrap(), config);
        let redacted = config.redacted().to_toml().unwrap();
        assert!(!redacted.contains(SECRET), "{redacted}");
    }

    #[test]
    fn sample_config_in_deploy_is_valid() {
        // The sample leaves the secret to CHORUS_API_SECRET (systemd EnvironmentFile).
        let text = include_str!("../../../deploy/chorus.toml");
        let mut config = Config::from_toml(text).unwrap();
        assert!(
            config.validate().is_err(),
            "the sample must not run on the dev secret"
        );
        config
            .apply_env(&env(&[("CHORUS_API_SECRET", SECRET)]))
            .unwrap();
        config.validate().unwrap();
    }

    #[test]
    fn public_url_derivation() {
        let config = Config::default();
        let cases = [
            ("127.0.0.1:7880", "http://127.0.0.1:7880"),
            ("0.0.0.0:8000", "http://127.0.0.1:8000"),
            ("[::]:8000", "http://[::1]:8000"),
        ];
        for (addr, want) in cases {
            assert_eq!(config.public_url_for(self::addr(addr)), want);
        }
        let mut config = Config::default();
        config.http.public_url = Some("https://sfu.example.com/".into());
        assert_eq!(
            config.public_url_for(addr("0.0.0.0:1")),
            "https://sfu.example.com"
        );
    }
}
