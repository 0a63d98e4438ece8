//! User access tokens: JWTs signed with HS256 and the secret of an API key.
//!
//! The claims are [`AccessClaims`]: `iss` names the API key whose secret signed
//! the token, `sub` is the user's identity, `room` the one room it admits to.
//! Verification takes the current time as an argument; nothing here reads a clock.

use std::collections::HashMap;
use std::fmt;

use chorus_protocol::Grants;
use chorus_protocol::token::AccessClaims;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// A token whose `nbf` lies at most this far in the future is accepted anyway:
/// the minting service's clock may run a little ahead of ours.
pub const NBF_LEEWAY_SECS: u64 = 10;

/// Longest lifetime of a token minted by this server, in seconds.
pub const MAX_TTL_SECS: u64 = 86_400;

/// Lifetime of a token minted without an explicit one, in seconds.
pub const DEFAULT_TTL_SECS: u64 = 3_600;

/// The secret of an API key. Never printed by `Debug`.
#[derive(Clone)]
pub struct ApiSecret(String);

impl ApiSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the first difference lies.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiSecret(..)")
    }
}

/// API keys and their secrets. One of them is the primary key: the one the
/// server signs demo tokens with.
#[derive(Debug, Clone)]
pub struct Keys {
    primary: String,
    secrets: HashMap<String, ApiSecret>,
}

impl Keys {
    pub fn new(api_key: impl Into<String>, secret: ApiSecret) -> Self {
        let primary = api_key.into();
        let secrets = HashMap::from([(primary.clone(), secret)]);
        Self { primary, secrets }
    }

    /// Adds (or replaces) a key, e.g. while rotating secrets.
    pub fn with(mut self, api_key: impl Into<String>, secret: ApiSecret) -> Self {
        self.secrets.insert(api_key.into(), secret);
        self
    }

    pub fn primary(&self) -> &str {
        &self.primary
    }

    pub fn secret(&self, api_key: &str) -> Option<&ApiSecret> {
        self.secrets.get(api_key)
    }

    /// Whether `secret` is the secret of `api_key`, compared in constant time.
    pub fn check_secret(&self, api_key: &str, secret: &str) -> bool {
        match self.secrets.get(api_key) {
            Some(expected) => expected.matches(secret),
            None => {
                // Spend the same work on unknown keys.
                let _ = ApiSecret::new(String::new()).matches(secret);
                false
            }
        }
    }

    /// Signs `claims` with the secret of `claims.iss`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, MintError> {
        let secret = self
            .secret(&claims.iss)
            .ok_or_else(|| MintError::UnknownKey(claims.iss.clone()))?;
        let key = EncodingKey::from_secret(secret.expose().as_bytes());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
            .map_err(|e| MintError::Encode(e.to_string()))
    }

    /// Mints a token for `grant`, signed with `api_key`, valid from `now_unix`.
    pub fn mint(&self, api_key: &str, grant: NewToken, now_unix: u64) -> Result<String, MintError> {
        if grant.ttl_secs == 0 || grant.ttl_secs > MAX_TTL_SECS {
            return Err(MintError::InvalidTtl(grant.ttl_secs));
        }
        let name = if grant.name.is_empty() {
            grant.identity.clone()
        } else {
            grant.name
        };
        let claims = AccessClaims {
            iss: api_key.to_owned(),
            sub: grant.identity,
            name,
            room: grant.room,
            exp: now_unix + grant.ttl_secs,
            nbf: now_unix,
            iat: Some(now_unix),
            grants: grant.grants,
        };
        self.sign(&claims)
    }

    /// Checks signature, expiry and not-before of `token` at time `now_unix`
    /// (seconds since the Unix epoch) and returns its claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<AccessClaims, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Malformed(format!(
                "algorithm {:?} is not HS256",
                header.alg
            )));
        }
        let api_key = unverified_issuer(token)?;
        let secret = self
            .secret(&api_key)
            .ok_or_else(|| TokenError::UnknownKey(api_key.clone()))?;
        let claims = jsonwebtoken::decode::<AccessClaims>(
            token,
            &DecodingKey::from_secret(secret.expose().as_bytes()),
            &checks_done_by_us(),
        )
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::InvalidSignature,
            _ => TokenError::Malformed(e.to_string()),
        })?
        .claims;
        if claims.sub.is_empty() {
            return Err(TokenError::Malformed("empty identity (sub)".into()));
        }
        if claims.room.is_empty() {
            return Err(TokenError::Malformed("empty room".into()));
        }
        if now_unix >= claims.exp {
            return Err(TokenError::Expired {
                exp: claims.exp,
                now: now_unix,
            });
        }
        if claims.nbf > now_unix + NBF_LEEWAY_SECS {
            return Err(TokenError::NotYetValid {
                nbf: claims.nbf,
                now: now_unix,
            });
        }
        Ok(claims)
    }
}

/// What a new token admits to.
#[derive(Debug, Clone, PartialEq)]
pub struct NewToken {
    pub room: String,
    pub identity: String,
    /// Display name; empty means the identity.
    pub name: String,
    pub grants: Grants,
    pub ttl_secs: u64,
}

/// The room a request asks for must be the token's room.
pub fn check_room(claims: &AccessClaims, requested: &str) -> Result<(), TokenError> {
    if claims.room == requested {
        Ok(())
    } else {
        Err(TokenError::WrongRoom {
            token_room: claims.room.clone(),
            requested: requested.to_owned(),
        })
    }
}

/// Why a token was refused. `code()` is the stable string sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("no access token given")]
    Missing,
    #[error("malformed access token: {0}")]
    Malformed(String),
    #[error("unknown API key '{0}'")]
    UnknownKey(String),
    #[error("access token signature does not verify")]
    InvalidSignature,
    #[error("access token expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("access token not valid before {nbf} (now {now})")]
    NotYetValid { nbf: u64, now: u64 },
    #[error("access token is for room '{token_room}', not '{requested}'")]
    WrongRoom {
        token_room: String,
        requested: String,
    },
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Missing => "token_missing",
            TokenError::Malformed(_) => "token_malformed",
            TokenError::UnknownKey(_) => "token_unknown_key",
            TokenError::InvalidSignature => "token_invalid_signature",
            TokenError::Expired { .. } => "token_expired",
            TokenError::NotYetValid { .. } => "token_not_yet_valid",
            TokenError::WrongRoom { .. } => "token_wrong_room",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MintError {
    #[error("unknown API key '{0}'")]
    UnknownKey(String),
    #[error("ttl must be between 1 and {MAX_TTL_SECS} seconds, got {0}")]
    InvalidTtl(u64),
    #[error("cannot encode token: {0}")]
    Encode(String),
}

/// Reads `iss` without checking the signature: it names the key to check it with.
fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    let mut validation = checks_done_by_us();
    validation.insecure_disable_signature_validation();
    let issuer = jsonwebtoken::decode::<Issuer>(token, &DecodingKey::from_secret(&[]), &validation)
        .map_err(|e| TokenError::Malformed(e.to_string()))?
        .claims;
    match issuer.iss {
        Some(iss) if !iss.is_empty() => Ok(iss),
        _ => Err(TokenError::Malformed("no issuer (iss)".into())),
    }
}

/// HS256 only; `exp`/`nbf` are checked by [`Keys::verify`] against the time it is given.
fn checks_done_by_us() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const NOW: u64 = 1_800_000_000;
    const SECRET: &str = "test-secret-0123456789abcdef0123456789";

    fn keys() -> Keys {
        Keys::new("key1", ApiSecret::new(SECRET)).with("key2", ApiSecret::new("other-secret"))
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "key1".into(),
            sub: "alice".into(),
            name: "Alice".into(),
            room: "standup".into(),
            exp: NOW + 600,
            nbf: NOW - 10,
            iat: None,
            grants: Grants::default(),
        }
    }

    fn signed(claims: &AccessClaims) -> String {
        keys().sign(claims).unwrap()
    }

    fn signed_with(secret: &str, claims: &AccessClaims) -> String {
        Keys::new(claims.iss.clone(), ApiSecret::new(secret))
            .sign(claims)
            .unwrap()
    }

    /// A token whose payload is `payload`, signed correctly with key1's secret.
    fn signed_raw(payload: &serde_json::Value) -> String {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), payload, &key).unwrap()
    }

    fn with_payload_swapped(token: &str, claims: &AccessClaims) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        format!("{}.{}.{}", parts[0], payload, parts[2])
    }

    #[test]
    fn refusals_and_success() {
        let ok = claims();
        let tampered = with_payload_swapped(
            &signed(&ok),
            &AccessClaims {
                room: "boardroom".into(),
                ..claims()
            },
        );
        let hs512 = {
            let key = EncodingKey::from_secret(SECRET.as_bytes());
            jsonwebtoken::encode(&Header::new(Algorithm::HS512), &ok, &key).unwrap()
        };
        let cases: Vec<(&str, String, Result<(), &str>)> = vec![
            ("valid", signed(&ok), Ok(())),
            ("empty", String::new(), Err("token_missing")),
            ("blank", "   ".into(), Err("token_missing")),
            ("not a jwt", "hello".into(), Err("token_malformed")),
            ("three dots of junk", "a.b.c".into(), Err("token_malformed")),
            ("other algorithm", hs512, Err("token_malformed")),
            (
                "no issuer",
                signed_raw(&serde_json::json!({"sub":"a","room":"r","exp":NOW+60})),
                Err("token_malformed"),
            ),
            (
                "claims of the wrong shape",
                signed_raw(&serde_json::json!({"iss":"key1","sub":"a","exp":"soon"})),
                Err("token_malformed"),
            ),
            (
                "empty identity",
                signed(&AccessClaims {
                    sub: String::new(),
                    ..claims()
                }),
                Err("token_malformed"),
            ),
            (
                "unknown key",
                signed_with(
                    SECRET,
                    &AccessClaims {
                        iss: "nokey".into(),
                        ..claims()
                    },
                ),
                Err("token_unknown_key"),
            ),
            (
                "signed with another secret",
                signed_with("not-the-secret", &ok),
                Err("token_invalid_signature"),
            ),
            (
                "signed by key2's secret but claims key1",
                signed_with("other-secret", &ok),
                Err("token_invalid_signature"),
            ),
            ("payload tampered", tampered, Err("token_invalid_signature")),
            (
                "expired",
                signed(&AccessClaims {
                    exp: NOW - 1,
                    ..claims()
                }),
                Err("token_expired"),
            ),
            (
                "expires right now",
                signed(&AccessClaims {
                    exp: NOW,
                    ..claims()
                }),
                Err("token_expired"),
            ),
            (
                "not yet valid",
                signed(&AccessClaims {
                    nbf: NOW + NBF_LEEWAY_SECS + 1,
                    ..claims()
                }),
                Err("token_not_yet_valid"),
            ),
            (
                "nbf within leeway",
                signed(&AccessClaims {
                    nbf: NOW + NBF_LEEWAY_SECS,
                    ..claims()
                }),
                Ok(()),
            ),
            (
                "no nbf",
                signed_raw(&serde_json::json!({
                    "iss":"key1","sub":"a","room":"r","exp":NOW+60
                })),
                Ok(()),
            ),
        ];
        for (name, token, want) in cases {
            let got = keys().verify(&token, NOW);
            match (got, want) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(code)) => assert_eq!(e.code(), code, "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn verified_claims_are_the_signed_ones() {
        let ok = claims();
        assert_eq!(keys().verify(&signed(&ok), NOW), Ok(ok));
    }

    #[test]
    fn wrong_room() {
        let c = claims();
        assert_eq!(check_room(&c, "standup"), Ok(()));
        assert_eq!(
            check_room(&c, "other").unwrap_err().code(),
            "token_wrong_room"
        );
    }

    #[test]
    fn mint_then_verify() {
        let keys = keys();
        let token = keys
            .mint(
                "key2",
                NewToken {
                    room: "r1".into(),
                    identity: "bob".into(),
                    name: String::new(),
                    grants: Grants::subscribe_only(),
                    ttl_secs: 60,
                },
                NOW,
            )
            .unwrap();
        let c = keys.verify(&token, NOW + 59).unwrap();
        assert_eq!(c.iss, "key2");
        assert_eq!(c.sub, "bob");
        assert_eq!(c.name, "bob", "name defaults to the identity");
        assert_eq!(c.room, "r1");
        assert_eq!(c.grants, Grants::subscribe_only());
        assert_eq!(
            keys.verify(&token, NOW + 60).unwrap_err().code(),
            "token_expired"
        );
    }

    #[test]
    fn mint_refuses_bad_ttl_and_unknown_key() {
        let grant = |ttl_secs| NewToken {
            room: "r".into(),
            identity: "i".into(),
            name: String::new(),
            grants: Grants::default(),
            ttl_secs,
        };
        assert_eq!(
            keys().mint("key1", grant(0), NOW),
            Err(MintError::InvalidTtl(0))
        );
        assert_eq!(
            keys().mint("key1", grant(MAX_TTL_SECS + 1), NOW),
            Err(MintError::InvalidTtl(MAX_TTL_SECS + 1))
        );
        assert!(keys().mint("key1", grant(MAX_TTL_SECS), NOW).is_ok());
        assert_eq!(
            keys().mint("nokey", grant(60), NOW),
            Err(MintError::UnknownKey("nokey".into()))
        );
    }

    #[test]
    fn secret_check() {
        let keys = keys();
        assert!(keys.check_secret("key1", SECRET));
        assert!(!keys.check_secret("key1", "other-secret"));
        assert!(!keys.check_secret("key1", ""));
        assert!(!keys.check_secret("nokey", SECRET));
        assert!(keys.check_secret("key2", "other-secret"));
        assert_eq!(format!("{:?}", ApiSecret::new("s3cret")), "ApiSecret(..)");
    }
}
