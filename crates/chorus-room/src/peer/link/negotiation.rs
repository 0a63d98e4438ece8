//! A link's SDP: the answer to a publisher's offer, the offer to a subscriber and its
//! answer, and what the remote side's sections teach the link.

use std::time::Instant;

use chorus_core::bwe::{BandwidthEstimator, BweConfig};
use chorus_core::{Codec, TrackId};
use chorus_transport::IceCredentials;
use chorus_transport::webrtc::{ServerConnection, sdp::RemoteMedia};

use super::streams::{UpSection, UpStream};
use super::{Link, PeerEvent, SdpFailed};

impl Link {
    /// Publisher side: answers the client's offer, and learns its tracks from it.
    pub fn answer(
        &mut self,
        offer: &str,
        fresh: impl FnOnce() -> IceCredentials,
        now: Instant,
    ) -> Result<String, SdpFailed> {
        let answer = match self.conn.as_mut() {
            Some(conn) => conn.reanswer(offer, fresh, now).map_err(SdpFailed::of)?,
            None => {
                let mut params = self
                    .factory
                    .accept_params(self.credentials.clone(), self.session_id);
                params.ingress = self.ingress.clone();
                let (conn, answer) =
                    ServerConnection::accept(offer, params, now).map_err(SdpFailed::of)?;
                self.conn = Some(conn);
                answer
            }
        };
        let media = self
            .conn
            .as_ref()
            .and_then(ServerConnection::remote)
            .map(|r| r.media.clone())
            .unwrap_or_default();
        for m in media {
            self.learn(m);
        }
        Ok(answer)
    }

    /// One m-section of the client's offer: its SSRCs and mid lead to its track, which
    /// the room hears of once.
    pub(super) fn learn(&mut self, m: RemoteMedia) {
        let video = m.kind == "video";
        let up = UpStream {
            sdp_track: m.track_id.as_deref().unwrap_or(&m.mid).into(),
            video,
            layer: None,
        };
        // A simulcast section's SSRCs (Firefox lists them) say nothing of their layer:
        // those are learned from the rid extension.
        if m.rids.is_empty() {
            for ssrc in &m.ssrcs {
                self.by_ssrc.insert(*ssrc, up.clone());
            }
        }
        if m.mid_ext.is_some() {
            self.mid_ext = m.mid_ext;
        }
        if m.twcc_ext.is_some() {
            self.twcc_ext = m.twcc_ext;
        }
        let section = UpSection {
            stream: up.clone(),
            rids: m.rids.clone(),
            rid_ext: m.rid_ext,
        };
        if self.by_mid.insert(m.mid.clone(), section.clone()).as_ref() == Some(&section) {
            return;
        }
        self.events.push_back(PeerEvent::UpTrack {
            sdp_track: up.sdp_track.to_string(),
            codec: m.codec,
            audio_level_ext: m.audio_level_ext,
            layers: m.rids,
            dd_ext: m.dd_ext,
        });
    }

    pub fn add_track(&mut self, id: &TrackId, codec: Codec, ssrc: u32) {
        self.sections.add(id, codec, ssrc);
    }

    pub fn remove_track(&mut self, id: &TrackId) {
        if let Some(ssrc) = self.sections.remove(id) {
            self.outbound.forget(ssrc);
        }
    }

    pub fn offer(
        &mut self,
        restart: Option<IceCredentials>,
        now: Instant,
    ) -> Result<String, SdpFailed> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SdpFailed("not an offering connection".into()))?;
        Ok(conn.reoffer(self.sections.offer(), restart, now))
    }

    pub fn apply_answer(&mut self, answer: &str, now: Instant) -> Result<(), SdpFailed> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SdpFailed("not an offering connection".into()))?;
        conn.apply_answer(answer, now).map_err(SdpFailed::of)?;
        self.sections.answered();
        // The first answer that takes transport-wide CC (on any m-section: the number
        // is the transport's) starts the estimator; later answers keep it.
        let taken = conn.remote().and_then(|r| {
            let sections = r.media.iter().chain(&r.idle);
            sections.filter_map(|m| m.twcc_ext).next()
        });
        match (taken, self.down_twcc.as_mut()) {
            (Some(id), Some((ext, _))) => *ext = id,
            (Some(id), None) => {
                let bwe = BandwidthEstimator::new(BweConfig::default(), now);
                self.down_twcc = Some((id, Box::new(bwe)));
            }
            (None, _) => self.down_twcc = None,
        }
        Ok(())
    }

    /// Subscriber side: the tracks the last answer took without their codec (see
    /// [`Sections::refused`]).
    pub fn refused_tracks(&self) -> Vec<TrackId> {
        let Some(answer) = self.conn.as_ref().and_then(ServerConnection::remote) else {
            return Vec::new();
        };
        self.sections.refused(|mid, codec| {
            let m = answer.media(mid).or_else(|| answer.idle(mid));
            m.is_some_and(|m| m.codecs.contains(&codec))
        })
    }
}
