//! Claims of a user access token (a JWT signed with HS256 and the API secret).

use serde::{Deserialize, Serialize};

use crate::Grants;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// API key whose secret signed the token.
    pub iss: String,
    /// Identity of the user.
    pub sub: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Room the token admits to.
    pub room: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not before, seconds since the Unix epoch.
    #[serde(default)]
    pub nbf: u64,
    /// Issued at, seconds since the Unix epoch; `nbf` stands in when absent. A removal
    /// refuses tokens issued at or before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default)]
    pub grants: Grants,
}
