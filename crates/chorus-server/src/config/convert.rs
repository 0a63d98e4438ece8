//! From the settings to what the server is built from: the [`MediaConfig`] of
//! the media plane, the rooms' [`RoomConfig`], the API's keys and [`ApiConfig`],
//! and the public URL.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chorus_api::{ApiConfig, ApiSecret, Keys, TurnConfig};
use chorus_room::RoomConfig;

use crate::media::MediaConfig;

use super::sections::Config;

impl Config {
    pub fn media_config(&self) -> MediaConfig {
        MediaConfig {
            bind: self.media.bind,
            announce: self.media.announce,
            workers: self.media.workers,
            ice_disconnected_timeout: Duration::from_millis(self.media.ice_disconnected_timeout_ms),
            ice_failed_timeout: Duration::from_millis(self.media.ice_failed_timeout_ms),
            ice_connect_timeout: Duration::from_millis(self.media.ice_connect_timeout_ms),
        }
    }

    pub fn room_config(&self) -> RoomConfig {
        RoomConfig {
            auto_create_rooms: self.rooms.auto_create,
            default_max_participants: self.rooms.default_max_participants,
            max_rooms: self.rooms.max_rooms,
            empty_room_timeout: Duration::from_secs(self.rooms.empty_timeout_secs),
            egress_shards: match self.rooms.egress_shards {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            },
            drain_timeout: Duration::from_secs(self.rooms.drain_timeout_secs),
            joins_per_second: self.rooms.max_joins_per_second,
            room_joins_per_second: self.rooms.max_joins_per_second_per_room,
            last_n_default: self.rooms.last_n_default,
            media_setup_timeout: Duration::from_millis(self.media.setup_timeout_ms),
            max_tracks_per_participant: self.rooms.max_tracks_per_participant,
            data: chorus_room::data::DataLimits {
                max_message_bytes: self.rooms.data_max_message_bytes,
                messages_per_second: self.rooms.data_messages_per_second,
                bytes_per_second: self.rooms.data_bytes_per_second,
            },
            plain_rtp: chorus_room::PlainRtpConfig {
                bind_ip: self.media.bind.ip(),
                timeout: Duration::from_millis(self.plain_rtp.timeout_ms),
                max_per_room: self.plain_rtp.max_per_room,
                allow_public_remote: self.plain_rtp.allow_public_remote,
            },
            removals: chorus_room::removals::RemovalPolicy {
                ban: Duration::from_secs(self.rooms.removal_ban_secs),
                keep: Duration::from_secs(self.rooms.removal_record_secs),
                cap: self.rooms.max_removal_records,
            },
            echo_room: (!self.rooms.echo_room.is_empty()).then(|| self.rooms.echo_room.clone()),
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
    pub fn webhook_config(&self) -> chorus_webhooks::WebhookConfig {
        chorus_webhooks::WebhookConfig {
            urls: self.webhooks.urls.clone(),
            secret: self.api.secret.clone(),
            queue: self.webhooks.queue,
        }
    }

    pub fn api_config(&self, public_url: String) -> ApiConfig {
        ApiConfig {
            keys: self.keys(),
            demo_enabled: self.demo.enabled,
            public_url,
            allowed_origins: self.http.allowed_origins.clone(),
            turn: self.turn_config(),
        }
    }

    /// The TURN servers handed to clients; `None` when no URL is configured.
    pub fn turn_config(&self) -> Option<TurnConfig> {
        (!self.turn.urls.is_empty()).then(|| TurnConfig {
            urls: self.turn.urls.clone(),
            secret: self.turn.secret.clone(),
            credential_ttl: Duration::from_secs(self.turn.credential_ttl_secs),
        })
    }

    /// The TLS settings of the HTTP server from `http.tls_cert_file` and
    /// `http.tls_key_file`, or `None` for plain HTTP.
    pub fn tls_server_config(
        &self,
    ) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, crate::tls::TlsConfigError> {
        crate::tls::server_config(
            self.http.tls_cert_file.as_deref(),
            self.http.tls_key_file.as_deref(),
        )
    }

    /// The configured public URL, or one derived from the HTTP address (an
    /// unspecified address becomes loopback; `https://` with built-in TLS).
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
        let scheme = if self.http.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    }
}
