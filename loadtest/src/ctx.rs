//! What the join tasks share: the server, the room, the media, and a token per join.

use anyhow::{Context, Result};

use chorus_client::{AudioContent, MediaProfile};
use chorus_protocol::Grants;

/// Shared by the join tasks.
pub(crate) struct Ctx {
    pub(crate) url: String,
    pub(crate) auth: String,
    pub(crate) room: String,
    pub(crate) media: MediaProfile,
    /// Participants below this index talk; the others are silent.
    pub(crate) talkers: usize,
    /// Participants (by index) behind `--cap-subscribers`' downlink cap, and the cap.
    pub(crate) capped: Vec<usize>,
    pub(crate) cap_kbps: u64,
    pub(crate) http: reqwest::Client,
}

/// The media of participant `index`: `base`, silent unless it is one of the talkers.
pub(crate) fn participant_media(base: &MediaProfile, talkers: usize, index: usize) -> MediaProfile {
    let mut media = base.clone();
    if index >= talkers {
        media.audio = AudioContent::Silence;
    }
    media
}

pub(crate) async fn token(
    ctx: &Ctx,
    room: &str,
    identity: &str,
    grants: &Grants,
) -> Result<String> {
    let body = serde_json::json!({ "room": room, "identity": identity, "grants": grants });
    let resp: serde_json::Value = ctx
        .http
        .post(format!("{}/v1/tokens", ctx.url))
        .header("authorization", format!("Basic {}", ctx.auth))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    resp["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in response")
}
