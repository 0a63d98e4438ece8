//! Phones and bots over plain RTP as the registry adds them: the request checked
//! (`crate::rtp::check`), a UDP socket opened, and the room asked to admit it.

use std::net::UdpSocket;

use chorus_plainrtp::SdesKey;
use chorus_protocol::ParticipantInfo;
use chorus_protocol::control::{CreateRtpParticipantRequest, RtpParticipantInfo, SdesParams};
use chorus_room_api::RoomError;

use super::RoomRegistry;
use crate::command::RoomCommand;
use crate::io::{Command, Reply, RtpJoin};
use crate::rtp::check;

impl RoomRegistry {
    /// A phone or bot joins `room` (which must exist) over plain RTP.
    pub async fn create_rtp_participant(
        &self,
        room: &str,
        req: CreateRtpParticipantRequest,
    ) -> Result<RtpParticipantInfo, RoomError> {
        if self.is_draining() {
            return Err(RoomError::Draining);
        }
        let config = self.config().plain_rtp.clone();
        let spec = check(&req, &config)?;
        let socket = UdpSocket::bind((config.bind_ip, 0))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| RoomError::RtpSocket(e.to_string()))?;
        let local = socket
            .local_addr()
            .map_err(|e| RoomError::RtpSocket(e.to_string()))?;
        let join = RtpJoin {
            name: req.name.unwrap_or_else(|| req.identity.clone()),
            identity: req.identity,
            codec: spec.codec,
            max_in_room: config.max_per_room,
            early_media: req.early_media,
        };
        // Chorus's own key for what it sends, fresh for each participant.
        let srtp = spec
            .srtp
            .clone()
            .map(|remote| (remote, SdesKey(rand::random())));
        let local_key = srtp.as_ref().map(|(_, local)| SdesParams {
            suite: chorus_plainrtp::sdes::SUITE.to_owned(),
            key: local.to_base64(),
        });
        let spec2 = spec.clone();
        let admitted = self
            .call(room, move |reply| RoomCommand::AddRtp {
                join,
                socket,
                remote: spec2.remote,
                payload_type: spec2.payload_type,
                timeout: config.timeout,
                srtp,
                reply,
            })
            .await??;
        Ok(RtpParticipantInfo {
            participant: admitted.info,
            codec: spec.codec.as_str().to_owned(),
            payload_type: spec.payload_type,
            local_address: local.to_string(),
            remote_address: spec.remote.to_string(),
            ssrc: admitted.ssrc,
            srtp: local_key,
        })
    }

    /// Answers a plain-RTP participant in early media (`connected`).
    pub async fn answer_rtp_participant(
        &self,
        room: &str,
        identity: &str,
    ) -> Result<ParticipantInfo, RoomError> {
        let cmd = Command::AnswerRtp {
            identity: identity.to_owned(),
        };
        match self
            .call(room, |reply| RoomCommand::Calling { cmd, reply })
            .await?
        {
            Some(Reply::RtpAnswered(r)) => r,
            _ => Err(RoomError::RoomClosed),
        }
    }
}
