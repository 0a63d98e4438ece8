//! Access tokens, as the signaling endpoint checks them: verified with a fixed key at a
//! fixed time. The input is tried as a whole token, and as the claims of a token signed
//! with the right secret, so that what follows the signature check is reached too.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chorus_api::token::check_room;
use chorus_api::{ApiSecret, Keys};
use jsonwebtoken::{Algorithm, EncodingKey};

pub const KEY: &str = "devkey";
pub const SECRET: &str = "devsecret-for-fuzzing-0123456789abcdef";
/// 2023-11-14, inside the seeds' validity.
pub const NOW: u64 = 1_700_000_000;

pub fn token(data: &[u8]) {
    let keys = Keys::new(KEY, ApiSecret::new(SECRET));
    if let Ok(text) = std::str::from_utf8(data) {
        check(&keys, text);
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(data));
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256)
        .expect("HS256 signs anything");
    check(&keys, &format!("{signing_input}.{signature}"));
}

fn check(keys: &Keys, token: &str) {
    if let Ok(claims) = keys.verify(token, NOW) {
        assert!(!claims.sub.is_empty() && !claims.room.is_empty());
        let _ = check_room(&claims, "standup");
    }
}
