//! One run's Janus side: the VideoRoom room, the feeds published in it, and the joins of
//! publishers and subscribers.

use std::hash::{Hash as _, Hasher as _};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use chorus_client::{Engine, MediaProfile, PeerTarget, ServerMessage, TrackSource};
use chorus_protocol::MediaKind;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use super::api::{Api, REQUEST_TIMEOUT};
use super::participant::{Joining, PublishProgress};
use super::protocol::{EventKind, FeedId, Jsep, Request, RoomId, name_tracks};
use crate::Role;
use crate::member::JoinOutcome;

/// A numeric room id for a room name, so a run's `--room` names its Janus room too.
/// 52 bits: Janus ids travel as JSON numbers, which JavaScript clients read as doubles.
pub fn room_id(name: &str) -> RoomId {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    RoomId((hasher.finish() & ((1 << 52) - 1)).max(1))
}

/// A publisher whose tracks are up, and their ids in the harness (one per kind).
#[derive(Debug, Clone)]
struct Feed {
    id: FeedId,
    tracks: Vec<(MediaKind, String)>,
}

/// Publishers that published, and how many are done, published or not.
#[derive(Debug, Clone, Default)]
struct Feeds {
    published: Vec<Feed>,
    settled: usize,
}

/// The Janus side of one run: the room, and the feeds the subscribers subscribe to.
pub(crate) struct JanusRoom {
    api: Api,
    room: RoomId,
    media: MediaProfile,
    publishers: usize,
    feeds: watch::Sender<Feeds>,
}

impl JanusRoom {
    /// Creates the VideoRoom room for `roles` (only `fanout`-shaped plans: publishers
    /// first, then receive-only participants).
    pub(crate) async fn create(
        url: &str,
        room: &str,
        roles: &[Role],
        media: MediaProfile,
    ) -> Result<Arc<Self>> {
        let publishers = roles.iter().take_while(|r| r.mic || r.camera).count();
        if roles[publishers..].iter().any(|r| r.mic || r.camera) {
            bail!("--target janus runs the fanout scenario only (publishers, then subscribers)");
        }
        let api = Api::new(url)?;
        let room = room_id(room);
        let session = api.create_session().await.context("janus session")?;
        let handle = api
            .attach_videoroom(session)
            .await
            .context("janus attach")?;
        // Codecs as our clients send them; no bitrate cap (the synthetic sources ignore
        // REMB anyway); no periodic keyframe requests; every publisher of the plan.
        let create = json!({
            "request": "create",
            "room": room.0,
            "publishers": publishers.max(1),
            "audiocodec": "opus",
            "videocodec": "vp8",
            "bitrate": 0,
            "fir_freq": 0,
            "notify_joining": false,
        });
        let created = api.request(session, handle, create).await;
        let _ = api.destroy(session).await;
        created.with_context(|| format!("janus room {}", room.0))?;
        Ok(Arc::new(Self {
            api,
            room,
            media,
            publishers,
            feeds: watch::Sender::new(Feeds::default()),
        }))
    }

    /// Joins one participant: a publisher publishes its tracks, a subscriber
    /// subscribes to every published feed once all publishers are done.
    pub(crate) async fn join_one(self: Arc<Self>, index: usize, role: Role) -> Result<JoinOutcome> {
        if role.mic || role.camera {
            let outcome = self.join_publisher(index, role).await;
            let feed = match &outcome {
                Ok((outcome, feed)) if outcome.publish_error.is_none() => Some(feed.clone()),
                _ => None,
            };
            self.feeds.send_modify(|feeds| {
                feeds.settled += 1;
                feeds.published.extend(feed);
            });
            outcome.map(|(outcome, _)| outcome)
        } else {
            let mut feeds = self.feeds.subscribe();
            let feeds = feeds
                .wait_for(|f| f.settled >= self.publishers)
                .await
                .context("janus feeds")?
                .published
                .clone();
            self.join_subscriber(index, role, &feeds).await
        }
    }

    async fn join_publisher(&self, index: usize, role: Role) -> Result<(JoinOutcome, Feed)> {
        let started = Instant::now();
        let mut joining = Joining::open(&self.api, PeerTarget::Publisher).await?;
        let body = json!({
            "request": "join",
            "ptype": "publisher",
            "room": self.room.0,
            "display": format!("p{index:03}"),
        });
        let joined = joining.ask(Request::Message { body, jsep: None }).await?;
        let EventKind::Joined(id) = joined.kind else {
            bail!("janus join: unexpected event {:?}", joined.kind);
        };
        let joined_at = Instant::now();

        let mut engine = Engine::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), self.media.clone()).await?;
        let mut tracks = Vec::new();
        let mut feed = Feed {
            id,
            tracks: Vec::new(),
        };
        let sources = [
            (role.mic, TrackSource::Microphone, "mic"),
            (role.camera, TrackSource::Camera, "cam"),
        ];
        for (_, source, name) in sources.into_iter().filter(|(on, ..)| *on) {
            let track_id = format!("p{index:03}-{name}");
            engine.publish(Instant::now(), name, &track_id, source)?;
            feed.tracks.push((source.kind(), track_id.clone()));
            tracks.push(track_id);
        }
        let (negotiated_tx, mut negotiated) = mpsc::unbounded_channel();
        let (up_tx, up) = oneshot::channel();
        let progress = PublishProgress {
            negotiated: negotiated_tx,
            up: Some(up_tx),
        };
        // Publishers subscribe to nobody here (a fan-out has nothing else to receive), so
        // they expect nothing and count in no loss figure.
        let role = Role {
            subscribe: false,
            ..role
        };
        let member = joining.spawn(engine, Some(progress), index, joined_at, &tracks, role);
        // Every publication negotiated (Janus answered) or failed, like `Client::publish`,
        // and then the connection up: Janus refuses subscriptions to a feed before that
        // ("no such feed").
        let mut publish_error = None;
        for _ in &tracks {
            match tokio::time::timeout(REQUEST_TIMEOUT, negotiated.recv()).await {
                Ok(Some((cid, Err(err)))) => publish_error = Some(format!("publish {cid}: {err}")),
                Ok(Some((_, Ok(())))) => {}
                Ok(None) => publish_error = Some("publish: participant task ended".to_owned()),
                Err(_) => publish_error = Some("publish: no answer from janus".to_owned()),
            }
        }
        if publish_error.is_none()
            && !matches!(tokio::time::timeout(REQUEST_TIMEOUT, up).await, Ok(Ok(())))
        {
            publish_error = Some("publish: janus never reported the connection up".to_owned());
        }
        let outcome = JoinOutcome {
            member,
            join_time: joined_at - started,
            publish_error,
        };
        Ok((outcome, feed))
    }

    async fn join_subscriber(
        &self,
        index: usize,
        role: Role,
        feeds: &[Feed],
    ) -> Result<JoinOutcome> {
        if feeds.is_empty() {
            bail!("janus: no published feed to subscribe to");
        }
        let started = Instant::now();
        let mut joining = Joining::open(&self.api, PeerTarget::Subscriber).await?;
        let streams: Vec<Value> = feeds.iter().map(|f| json!({ "feed": f.id.0 })).collect();
        let body = json!({
            "request": "join",
            "ptype": "subscriber",
            "room": self.room.0,
            "streams": streams,
        });
        let attached = joining.ask(Request::Message { body, jsep: None }).await?;
        let joined_at = Instant::now();
        let (EventKind::Attached(relayed), Some(Jsep::Offer(sdp))) =
            (&attached.kind, &attached.jsep)
        else {
            bail!("janus subscribe: expected an offer, got {attached:?}");
        };
        let names: Vec<(String, String)> = relayed
            .iter()
            .filter_map(|r| {
                let feed = feeds.iter().find(|f| f.id == r.feed)?;
                let (_, track) = feed.tracks.iter().find(|(kind, _)| *kind == r.kind)?;
                Some((r.mid.clone(), track.clone()))
            })
            .collect();
        let offer = ServerMessage::Offer {
            target: PeerTarget::Subscriber,
            sdp: name_tracks(sdp, &names),
        };
        let mut engine = Engine::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), self.media.clone()).await?;
        engine.handle_signal(Instant::now(), &offer)?;
        let member = joining.spawn(engine, None, index, joined_at, &[], role);
        Ok(JoinOutcome {
            member,
            join_time: joined_at - started,
            publish_error: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_stable_nonzero_and_fit_a_double() {
        let a = room_id("loadtest-fanout-1");
        assert_eq!(a, room_id("loadtest-fanout-1"));
        assert_ne!(a, room_id("loadtest-fanout-2"));
        for name in ["", "a", "loadtest-fanout-1"] {
            let RoomId(id) = room_id(name);
            assert!(id > 0 && id < (1 << 52), "{name}: {id}");
        }
    }
}
