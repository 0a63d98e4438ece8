//! What a loaded configuration must satisfy before a server runs on it: sound
//! API keys, no published secret on a public address, settings in range.

use anyhow::bail;
use chorus_protocol::control::MAX_PARTICIPANTS_CEILING;
use chorus_protocol::signal::MAX_LAST_N;

use super::sections::{Config, DEV_API_SECRET};

/// More shards than any machine Chorus runs on has cores is a typo.
const MAX_EGRESS_SHARDS: usize = 64;

/// A shorter TURN credential could expire before the client has even allocated.
const MIN_TURN_CREDENTIAL_TTL_SECS: u64 = 60;

/// Shortest API secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

impl Config {
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
        // Read now, so that a wrong path or file stops the server before it starts.
        self.tls_server_config()?;
        let max = self.rooms.default_max_participants;
        if max == 0 || max > MAX_PARTICIPANTS_CEILING {
            bail!(
                "rooms.default_max_participants must be between 1 and {MAX_PARTICIPANTS_CEILING}, got {max}"
            );
        }
        if self.rooms.max_rooms == 0 {
            bail!("rooms.max_rooms must be at least 1");
        }
        if self.rooms.egress_shards > MAX_EGRESS_SHARDS {
            bail!(
                "rooms.egress_shards must be at most {MAX_EGRESS_SHARDS} (0 = one per core), got {}",
                self.rooms.egress_shards
            );
        }
        if self.rooms.max_joins_per_second == 0 || self.rooms.max_joins_per_second_per_room == 0 {
            bail!(
                "rooms.max_joins_per_second and rooms.max_joins_per_second_per_room must be at \
                 least 1 (0 would refuse every join)"
            );
        }
        if self.rooms.last_n_default > MAX_LAST_N {
            bail!(
                "rooms.last_n_default must be at most {MAX_LAST_N}, got {}",
                self.rooms.last_n_default
            );
        }
        if !self.rooms.echo_room.is_empty() && !chorus_room::valid_room_name(&self.rooms.echo_room)
        {
            bail!(
                "rooms.echo_room: {:?} is not a room name (1-64 of A-Z a-z 0-9 - _ .)",
                self.rooms.echo_room
            );
        }
        if self.rooms.max_tracks_per_participant == 0 {
            bail!(
                "rooms.max_tracks_per_participant must be at least 1 (0 would refuse every publish)"
            );
        }
        let ceiling = chorus_room::data::MAX_MESSAGE_BYTES_CEILING;
        let data_max = self.rooms.data_max_message_bytes;
        if data_max == 0 || data_max > ceiling {
            bail!("rooms.data_max_message_bytes must be 1..={ceiling}, got {data_max}");
        }
        if self.rooms.data_messages_per_second == 0 {
            bail!("rooms.data_messages_per_second must be at least 1");
        }
        if (self.rooms.data_bytes_per_second as usize) < data_max {
            bail!(
                "rooms.data_bytes_per_second must be at least rooms.data_max_message_bytes \
                 ({data_max}): a message that large could never be sent"
            );
        }
        if self.rooms.removal_record_secs == 0 || self.rooms.max_removal_records == 0 {
            bail!(
                "rooms.removal_record_secs and rooms.max_removal_records must be at least 1 \
                 (0 would forget every removal at once)"
            );
        }
        for url in &self.webhooks.urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("webhooks.urls: {url:?} must start with http:// or https://");
            }
        }
        if self.webhooks.queue == 0 {
            bail!("webhooks.queue must be at least 1");
        }
        self.validate_turn()?;
        for origin in &self.http.allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.trim_end_matches('/') != origin
            {
                bail!(
                    "http.allowed_origins: {origin:?} is not an origin like \
                     \"https://app.example.com\" (scheme and host, no path)"
                );
            }
        }
        let m = &self.media;
        if let Some(t) = m.transport.as_deref().filter(|t| t.trim() != "chorus") {
            bail!(
                "media.transport (or CHORUS_MEDIA_TRANSPORT) is {t:?}: the `rtc` transport was \
                 removed and Chorus's own is the only one; delete the setting"
            );
        }
        for (name, ms) in [
            ("ice_disconnected_timeout_ms", m.ice_disconnected_timeout_ms),
            ("ice_failed_timeout_ms", m.ice_failed_timeout_ms),
            ("ice_connect_timeout_ms", m.ice_connect_timeout_ms),
            ("setup_timeout_ms", m.setup_timeout_ms),
        ] {
            if ms == 0 {
                bail!("media.{name} must be at least 1");
            }
        }
        if self.plain_rtp.timeout_ms == 0 {
            bail!("plain_rtp.timeout_ms must be at least 1");
        }
        Ok(())
    }

    fn validate_turn(&self) -> anyhow::Result<()> {
        let turn = &self.turn;
        for url in &turn.urls {
            let Some((scheme, rest)) = url.split_once(':') else {
                bail!("turn.urls: {url:?} is not a turn: or turns: URL");
            };
            if !(scheme == "turn" || scheme == "turns") || rest.is_empty() || rest.starts_with('/')
            {
                bail!(
                    "turn.urls: {url:?} must be a turn: or turns: URL (RFC 7065), e.g. \
                     \"turn:turn.example.com:3478?transport=udp\" or \
                     \"turns:turn.example.com:443?transport=tcp\""
                );
            }
        }
        if !turn.urls.is_empty() && turn.secret.trim().is_empty() {
            bail!(
                "turn.secret (or CHORUS_TURN_SECRET) must be set when turn.urls is: it is \
                 coturn's static-auth-secret, which the credentials are made with"
            );
        }
        if turn.credential_ttl_secs < MIN_TURN_CREDENTIAL_TTL_SECS {
            bail!(
                "turn.credential_ttl_secs must be at least {MIN_TURN_CREDENTIAL_TTL_SECS}, got {}",
                turn.credential_ttl_secs
            );
        }
        Ok(())
    }

    /// Whether the API secret is the published development one.
    pub fn uses_dev_secret(&self) -> bool {
        self.api.secret == DEV_API_SECRET
            || self.api.extra_keys.values().any(|s| s == DEV_API_SECRET)
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
