//! Loading, checking and converting whole configurations, layer by layer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use chorus_room::RoomConfig;

use crate::media::MediaConfig;

use super::{
    Config, DEFAULT_LOG_FILTER, DEV_API_KEY, DEV_API_SECRET, ENV_VARS, Overrides, RoomsSection,
};

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
    assert_eq!(rooms.drain_timeout, Duration::from_secs(30));
    // 0 in the file: one egress shard per core.
    assert_eq!(rooms.egress_shards, defaults.egress_shards);
    assert!(rooms.egress_shards >= 1);
    let media = config.media_config();
    let defaults = MediaConfig::default();
    assert_eq!(media.bind, defaults.bind);
    assert_eq!(media.ice_failed_timeout, defaults.ice_failed_timeout);
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
    let config = Config::load(None, &env(&[("RUST_LOG", "trace")]), &Overrides::default()).unwrap();
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
    let cases: [Refusal; 8] = [
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
        (
            "bad log format",
            &[("CHORUS_LOG_FORMAT", "xml")],
            "CHORUS_LOG_FORMAT",
        ),
        (
            "too many shards",
            &[("CHORUS_EGRESS_SHARDS", "65")],
            "rooms.egress_shards",
        ),
    ];
    for (name, vars, want) in cases {
        let err = Config::load(None, &env(vars), &Overrides::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains(want),
            "{name}: {err:#} does not mention {want:?}"
        );
    }
}

/// The drain timeout from the file, and the environment over the file.
#[test]
fn drain_timeout_from_file_and_environment() {
    let file = write_file("[rooms]\ndrain_timeout_secs = 90\n");
    let from_file = Config::load(Some(file.path()), &no_env(), &Overrides::default()).unwrap();
    assert_eq!(
        from_file.room_config().drain_timeout,
        Duration::from_secs(90)
    );
    let vars = env(&[
        ("CHORUS_DRAIN_TIMEOUT_SECS", "0"),
        ("CHORUS_LOG_FORMAT", "json"),
    ]);
    let from_env = Config::load(Some(file.path()), &vars, &Overrides::default()).unwrap();
    assert_eq!(from_env.room_config().drain_timeout, Duration::ZERO);
    assert_eq!(from_env.log.format, super::LogFormat::Json);
    assert_eq!(from_file.log.format, super::LogFormat::Text);
}

/// `[turn]` from the file, the environment over it, and what the API is given.
#[test]
fn turn_from_file_and_environment() {
    assert_eq!(Config::default().turn_config().map(|t| t.urls), None);
    let file = write_file(
        "[turn]\nurls = [\"turn:turn.example.com:3478?transport=udp\"]\n\
         secret = \"file-turn-secret\"\ncredential_ttl_secs = 600\n",
    );
    let from_file = Config::load(Some(file.path()), &no_env(), &Overrides::default()).unwrap();
    let turn = from_file.turn_config().unwrap();
    assert_eq!(turn.urls, ["turn:turn.example.com:3478?transport=udp"]);
    assert_eq!(turn.secret, "file-turn-secret");
    assert_eq!(turn.credential_ttl, Duration::from_secs(600));
    let vars = env(&[
        (
            "CHORUS_TURN_URLS",
            "turn:10.0.0.9:3478?transport=udp, turns:turn.example.com:443?transport=tcp,",
        ),
        ("CHORUS_TURN_SECRET", "env-turn-secret"),
        ("CHORUS_TURN_CREDENTIAL_TTL_SECS", "7200"),
    ]);
    let from_env = Config::load(Some(file.path()), &vars, &Overrides::default()).unwrap();
    let turn = from_env.api_config("http://x".into()).turn.unwrap();
    assert_eq!(
        turn.urls,
        [
            "turn:10.0.0.9:3478?transport=udp",
            "turns:turn.example.com:443?transport=tcp"
        ]
    );
    assert_eq!(turn.secret, "env-turn-secret");
    assert_eq!(turn.credential_ttl, Duration::from_secs(7200));
    let printed = from_env.redacted().to_toml().unwrap();
    assert!(!printed.contains("env-turn-secret"), "{printed}");
}

#[test]
fn turn_refusals() {
    let cases: [Refusal; 5] = [
        (
            "a stun: URL",
            &[
                ("CHORUS_TURN_URLS", "stun:stun.example.com"),
                ("CHORUS_TURN_SECRET", "s"),
            ],
            "turn.urls",
        ),
        (
            "an http URL",
            &[
                ("CHORUS_TURN_URLS", "https://turn.example.com"),
                ("CHORUS_TURN_SECRET", "s"),
            ],
            "turn.urls",
        ),
        (
            "no host",
            &[("CHORUS_TURN_URLS", "turn:"), ("CHORUS_TURN_SECRET", "s")],
            "turn.urls",
        ),
        (
            "no secret",
            &[("CHORUS_TURN_URLS", "turn:turn.example.com")],
            "turn.secret",
        ),
        (
            "a credential that expires at once",
            &[("CHORUS_TURN_CREDENTIAL_TTL_SECS", "5")],
            "turn.credential_ttl_secs",
        ),
    ];
    for (name, vars, want) in cases {
        let err = Config::load(None, &env(vars), &Overrides::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains(want),
            "{name}: {err:#} does not mention {want:?}"
        );
    }
}

/// `ENV_VARS` lists every variable the loader reads (it missed one before this test).
#[test]
fn every_variable_read_is_listed() {
    let source = include_str!("load.rs");
    let read: Vec<&str> = source
        .split("var(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(read.len() >= 15, "{read:?}");
    for name in read {
        assert!(
            ENV_VARS.contains(&name),
            "{name} is read but not in ENV_VARS"
        );
    }
}

/// Every variable the loader reads is in docs/configuration.md.
#[test]
fn every_variable_is_documented() {
    let docs = include_str!("../../../../docs/configuration.md");
    for name in ENV_VARS {
        assert!(
            docs.contains(&format!("`{name}`")),
            "{name} is not in docs/configuration.md"
        );
    }
}

#[test]
fn unknown_settings_are_refused() {
    let file = write_file("[http]\nbnid = \"127.0.0.1:1\"\n");
    let err = Config::load(Some(file.path()), &no_env(), &Overrides::default()).unwrap_err();
    assert!(format!("{err:#}").contains("bnid"), "{err:#}");
}

/// The removed `media.transport`: naming the one transport still starts the server
/// (it warns); naming `rtc` is refused rather than silently run on another transport.
#[test]
fn the_removed_transport_setting_is_accepted_only_as_chorus() {
    let file = write_file("[media]\ntransport = \"chorus\"\n");
    let config = Config::load(Some(file.path()), &no_env(), &Overrides::default()).unwrap();
    assert_eq!(config.media.transport.as_deref(), Some("chorus"));
    assert!(!config.to_toml().unwrap().contains("transport"));

    let file = write_file("[media]\ntransport = \"rtc\"\n");
    let err = Config::load(Some(file.path()), &no_env(), &Overrides::default()).unwrap_err();
    assert!(format!("{err:#}").contains("media.transport"), "{err:#}");
    let rtc = env(&[("CHORUS_MEDIA_TRANSPORT", "rtc")]);
    let err = Config::load(None, &rtc, &Overrides::default()).unwrap_err();
    assert!(format!("{err:#}").contains("removed"), "{err:#}");
}

#[test]
fn zero_ice_timeouts_are_refused() {
    type Set = fn(&mut Config);
    let cases: [(&str, Set); 11] = [
        ("ice_disconnected_timeout_ms", |c| {
            c.media.ice_disconnected_timeout_ms = 0
        }),
        ("ice_failed_timeout_ms", |c| {
            c.media.ice_failed_timeout_ms = 0
        }),
        ("ice_connect_timeout_ms", |c| {
            c.media.ice_connect_timeout_ms = 0
        }),
        ("setup_timeout_ms", |c| c.media.setup_timeout_ms = 0),
        ("max_tracks_per_participant", |c| {
            c.rooms.max_tracks_per_participant = 0
        }),
        ("data_max_message_bytes", |c| {
            c.rooms.data_max_message_bytes = 0
        }),
        ("data_max_message_bytes", |c| {
            c.rooms.data_max_message_bytes = 61441
        }),
        ("data_messages_per_second", |c| {
            c.rooms.data_messages_per_second = 0
        }),
        ("data_bytes_per_second", |c| {
            c.rooms.data_bytes_per_second = 100
        }),
        ("removal_record_secs", |c| c.rooms.removal_record_secs = 0),
        ("max_removal_records", |c| c.rooms.max_removal_records = 0),
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
    let text = include_str!("../../../../deploy/chorus.toml");
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

/// Every TOML file under `deploy/` (the systemd sample, the Kubernetes ConfigMap) parses
/// and is valid once the environment its deployment provides is there; every file the
/// Kubernetes kustomization and the Dockerfile name exists.
#[test]
fn every_config_in_deploy_is_valid() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let mut tomls = Vec::new();
    let mut dirs = vec![deploy.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                tomls.push(path);
            }
        }
    }
    assert!(tomls.len() >= 2, "{tomls:?}");
    let deployed = env(&[
        ("CHORUS_API_SECRET", SECRET),
        ("CHORUS_MEDIA_ANNOUNCE", "10.0.0.5"),
    ]);
    for path in &tomls {
        let text = std::fs::read_to_string(path).unwrap();
        let mut config =
            Config::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        config.apply_env(&deployed).unwrap();
        config
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    }
    let k8s = deploy.join("kubernetes");
    let kustomization = std::fs::read_to_string(k8s.join("kustomization.yaml")).unwrap();
    let named = kustomization
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter(|f| f.ends_with(".yaml") || f.ends_with(".toml"));
    for file in named {
        assert!(k8s.join(file).exists(), "kustomization names {file}");
    }
    let dockerfile = std::fs::read_to_string(deploy.join("Dockerfile")).unwrap();
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY deploy/")) {
        let source = line.split_whitespace().nth(1).unwrap();
        assert!(deploy.join("..").join(source).exists(), "{line}");
    }
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
