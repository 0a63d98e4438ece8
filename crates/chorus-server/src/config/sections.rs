//! What the settings are: the [`Config`] sections with their embedded defaults
//! (the development setup), and the TOML form they are read from and printed as.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use chorus_room::RoomConfig;
use serde::{Deserialize, Serialize};

use crate::media::MediaConfig;

/// API key of the embedded development configuration.
pub const DEV_API_KEY: &str = "devkey";
/// API secret of the embedded development configuration. Public knowledge:
/// the server refuses it on anything but a loopback address.
pub const DEV_API_SECRET: &str = "devsecret-change-me-0123456789abcdef";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpSection,
    pub media: MediaSection,
    pub rooms: RoomsSection,
    pub api: ApiSection,
    pub demo: DemoSection,
    pub log: LogSection,
    pub webhooks: WebhooksSection,
    pub turn: TurnSection,
    pub plain_rtp: PlainRtpSection,
}

/// Phones and bots over plain RTP (`POST /v1/rooms/{room}/rtp_participants`). Their
/// UDP ports are opened on the media bind address's IP, one per participant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlainRtpSection {
    /// No RTP from the participant this long (from its creation, or its last good
    /// packet) and it leaves with `rtp_timeout`.
    pub timeout_ms: u64,
    /// Plain-RTP participants one room takes at most (`too_many_rtp_participants`).
    pub max_per_room: u32,
    /// Let `remote_address` be a public address; off, only loopback and private
    /// (RFC 1918, IPv6 unique local) addresses are taken.
    pub allow_public_remote: bool,
}

impl Default for PlainRtpSection {
    fn default() -> Self {
        let d = chorus_room::PlainRtpConfig::default();
        Self {
            timeout_ms: millis(d.timeout),
            max_per_room: d.max_per_room,
            allow_public_remote: d.allow_public_remote,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnSection {
    /// TURN servers (`turn:` and `turns:` URLs of one coturn deployment) handed to every
    /// joining client in `joined.ice_servers`; empty: none.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret` (its `use-auth-secret` mode): credentials are made
    /// with it and coturn checks them with it.
    pub secret: String,
    /// How long a credential is valid from the join. coturn checks it again at every
    /// allocation refresh, so it has to outlast the longest call.
    pub credential_ttl_secs: u64,
}

impl Default for TurnSection {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            secret: String::new(),
            credential_ttl_secs: 86_400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksSection {
    /// Where room events are POSTed, signed with the API secret (docs/webhooks.md).
    pub urls: Vec<String>,
    /// Events queued per URL before new ones are dropped (counted).
    pub queue: usize,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            queue: 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Address of the HTTP server (control API, signaling, demo page). Port 0 picks one.
    pub bind: SocketAddr,
    /// Base URL clients reach the server at; derived from the bound address when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Origins (`https://app.example.com`) whose pages may open the signaling WebSocket;
    /// empty: any. Clients that send no `Origin` (native apps) are not checked.
    pub allowed_origins: Vec<String>,
    /// PEM certificate chain (leaf first); with `tls_key_file`, the HTTP server speaks
    /// only HTTPS and WSS. Neither: plain HTTP (e.g. behind a TLS-terminating proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate's leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
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
    /// A participant whose media is not up (ICE and DTLS on one of its connections) this
    /// long after its first connection was created is removed (`media_timeout`).
    pub setup_timeout_ms: u64,
    /// Removed: Chorus's own transport is the only one. Still read so that a file that
    /// names it (`"chorus"`) starts, with a warning; `"rtc"` is refused by `validate`.
    #[serde(skip_serializing)]
    pub transport: Option<String>,
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
    /// Egress shards per room (its subscribers' sending spread over threads); 0 = one
    /// per CPU core.
    pub egress_shards: usize,
    /// How long a drain (SIGTERM, `POST /v1/drain`) lets participants stay before the
    /// server stops; 0 stops at once.
    pub drain_timeout_secs: u64,
    /// Joins the whole server admits a second (and in one burst); more are refused with
    /// `join_rate_limited`.
    pub max_joins_per_second: u32,
    /// Joins one room admits a second (and in one burst).
    pub max_joins_per_second_per_room: u32,
    /// Cameras a subscriber receives (last-N: pins, then latest speakers) until it
    /// sends `set_last_n`; 0–350.
    pub last_n_default: u32,
    /// Tracks one participant may publish at once; more are refused with
    /// `too_many_tracks`.
    pub max_tracks_per_participant: u32,
    /// The largest data message a participant may send, in bytes (1–61440).
    pub data_max_message_bytes: usize,
    /// Data messages one participant may send a second (and in one burst).
    pub data_messages_per_second: u32,
    /// Bytes of data messages one participant may send a second (and in one burst); at
    /// least `data_max_message_bytes`.
    pub data_bytes_per_second: u32,
    /// After a removal by the control API, even a token issued later is refused this
    /// long; 0 = only tokens issued before the removal are.
    pub removal_ban_secs: u64,
    /// How long the server remembers a removal: at least the longest lifetime of the
    /// tokens it accepts (a token issued before the removal must have expired when the
    /// record goes). Kept across the room closing and opening again.
    pub removal_record_secs: u64,
    /// Most removals remembered at once (all rooms); one more evicts the oldest.
    pub max_removal_records: usize,
    /// The echo test room's name: each joiner gets a private room of its own where it
    /// receives its own audio about a second later and its own video. Empty: none.
    pub echo_room: String,
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
    /// Lines for people (`text`) or one JSON object per line (`json`), for a log pipeline.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 7880)),
            public_url: None,
            allowed_origins: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl Default for MediaSection {
    fn default() -> Self {
        let media = MediaConfig::default();
        Self {
            bind: media.bind,
            announce: media.announce,
            workers: media.workers,
            ice_disconnected_timeout_ms: millis(media.ice_disconnected_timeout),
            ice_failed_timeout_ms: millis(media.ice_failed_timeout),
            ice_connect_timeout_ms: millis(media.ice_connect_timeout),
            setup_timeout_ms: millis(RoomConfig::default().media_setup_timeout),
            transport: None,
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
            egress_shards: 0,
            drain_timeout_secs: rooms.drain_timeout.as_secs(),
            max_joins_per_second: rooms.joins_per_second,
            max_joins_per_second_per_room: rooms.room_joins_per_second,
            last_n_default: rooms.last_n_default,
            max_tracks_per_participant: rooms.max_tracks_per_participant,
            data_max_message_bytes: rooms.data.max_message_bytes,
            data_messages_per_second: rooms.data.messages_per_second,
            data_bytes_per_second: rooms.data.bytes_per_second,
            removal_ban_secs: rooms.removals.ban.as_secs(),
            removal_record_secs: rooms.removals.keep.as_secs(),
            max_removal_records: rooms.removals.cap,
            echo_room: rooms.echo_room.unwrap_or_default(),
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
            format: LogFormat::Text,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Config {
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
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
        if !config.turn.secret.is_empty() {
            hide(&mut config.turn.secret);
        }
        config
    }
}
