//! The server's settings: embedded defaults, overridden by a TOML file, then by
//! `CHORUS_*` environment variables, then by command-line flags.
//!
//! - `sections`: what the settings are, their embedded defaults, and their TOML form;
//! - `load`: the layers over the defaults (file, environment, flags) and their order;
//! - `validate`: what a loaded configuration must satisfy before the server runs on it;
//! - `convert`: the room and API configurations the server is built from.

mod convert;
mod load;
mod sections;
mod validate;

#[cfg(test)]
mod tests;

pub use load::{ENV_VARS, Overrides};
pub use sections::{
    ApiSection, Config, DEFAULT_LOG_FILTER, DEV_API_KEY, DEV_API_SECRET, DemoSection, HttpSection,
    LogFormat, LogSection, MediaSection, RoomsSection, TurnSection, WebhooksSection,
};
pub use validate::MIN_SECRET_BYTES;
