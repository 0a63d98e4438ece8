//! TURN credentials for clients whose networks block UDP to the media port.
//!
//! Chorus does not relay: a TURN server does (coturn, Debian's `coturn`), and Chorus
//! hands each joining client the servers' URLs with a credential of its own in
//! `joined.ice_servers`. The credential follows coturn's TURN REST API
//! (`use-auth-secret`): the username is `<unix expiry>:<identity>` and the password is
//! base64(HMAC-SHA1(shared secret, username)). coturn recomputes the HMAC with its
//! `static-auth-secret` and refuses usernames whose expiry has passed, so no state is
//! shared between the two servers but the secret.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_protocol::signal::IceServer;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The TURN servers to hand out and the secret shared with them.
#[derive(Clone)]
pub struct TurnConfig {
    /// `turn:` and `turns:` URLs, all of one TURN deployment (one shared secret).
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: String,
    /// How long a credential stays valid. It only has to outlive the allocation's
    /// start: coturn checks it when the client allocates and refreshes.
    pub credential_ttl: Duration,
}

impl fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("secret", &"..")
            .field("credential_ttl", &self.credential_ttl)
            .finish()
    }
}

impl TurnConfig {
    /// The `ice_servers` of `joined` for `identity` at `now_unix` (seconds since the
    /// Unix epoch): one entry with every URL and a credential valid until
    /// `now_unix + credential_ttl`.
    pub fn ice_servers(&self, identity: &str, now_unix: u64) -> Vec<IceServer> {
        if self.urls.is_empty() {
            return Vec::new();
        }
        let expires = now_unix.saturating_add(self.credential_ttl.as_secs());
        let credential = rest_credential(&self.secret, identity, expires);
        vec![IceServer {
            urls: self.urls.clone(),
            username: Some(credential.username),
            credential: Some(credential.password),
        }]
    }
}

/// A TURN REST API credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestCredential {
    /// `<unix expiry>:<identity>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub password: String,
}

/// The credential coturn (`use-auth-secret`, `static-auth-secret = secret`) accepts for
/// `identity` until `expires_unix`.
pub fn rest_credential(secret: &str, identity: &str, expires_unix: u64) -> RestCredential {
    let username = format!("{expires_unix}:{identity}");
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(username.as_bytes());
    let password = STANDARD.encode(mac.finalize().into_bytes());
    RestCredential { username, password }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed outside Rust, e.g. for the first:
    /// `printf '%s' '1700003600:alice' | openssl dgst -sha1 -hmac 'north-wind-7f3a9c' -binary | base64`
    /// (and the same with Python's `hmac`/`hashlib.sha1`/`base64`).
    #[test]
    fn credentials_match_independently_computed_vectors() {
        let cases = [
            (
                "north-wind-7f3a9c",
                "alice",
                1_700_003_600,
                "1700003600:alice",
                "3ND2h+l8wkZk6nNWxVk2zXOJY6E=",
            ),
            (
                "loopbacksecret",
                "chromium",
                1_700_000_000,
                "1700000000:chromium",
                "sD6ZvByrxm8VqByTgHhI3+fTmvg=",
            ),
        ];
        for (secret, identity, expires, username, password) in cases {
            let got = rest_credential(secret, identity, expires);
            assert_eq!(got.username, username);
            assert_eq!(got.password, password, "{secret} {username}");
        }
    }

    #[test]
    fn ice_servers_expire_after_the_ttl_from_the_clock_given() {
        let turn = TurnConfig {
            urls: vec![
                "turn:turn.example.com:3478?transport=udp".into(),
                "turns:turn.example.com:443?transport=tcp".into(),
            ],
            secret: "north-wind-7f3a9c".into(),
            credential_ttl: Duration::from_secs(3600),
        };
        let servers = turn.ice_servers("alice", 1_700_000_000);
        assert_eq!(
            servers,
            vec![IceServer {
                urls: turn.urls.clone(),
                username: Some("1700003600:alice".into()),
                credential: Some("3ND2h+l8wkZk6nNWxVk2zXOJY6E=".into()),
            }]
        );
        let none = TurnConfig {
            urls: Vec::new(),
            ..turn.clone()
        };
        assert!(none.ice_servers("alice", 1_700_000_000).is_empty());
        assert!(!format!("{turn:?}").contains("north-wind"));
    }
}
