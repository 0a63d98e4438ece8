//! The media plane the rooms share, started by the server and handed to the room
//! registry: the UDP port every participant's media uses, and the factory of the
//! server's peer connections (the address they announce, how long silence may last).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chorus_transport::{
    LivenessConfig, MediaPlane, MediaPlaneConfig, MediaPlaneError, PeerError, PeerFactory,
};

/// Settings of the media plane.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// UDP address every participant's media uses (one port for all).
    pub bind: SocketAddr,
    /// Address announced in ICE candidates (defaults to the bind address).
    pub announce: Option<IpAddr>,
    /// Media I/O worker threads; 0 means one per core.
    pub workers: usize,
    /// Silence on a media connection before its participant shows as disconnected.
    pub ice_disconnected_timeout: Duration,
    /// Further silence before the participant is removed (reason `connection_lost`).
    pub ice_failed_timeout: Duration,
    /// A media connection not up this long after its offer/answer (or ICE restart) is
    /// reported to the client (`media_unreachable`).
    pub ice_connect_timeout: Duration,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 7882)),
            announce: None,
            workers: 0,
            // RFC 3550 lets a client that only receives report as rarely as every 7.5 s.
            ice_disconnected_timeout: Duration::from_secs(10),
            // 30 s of silence in all: RFC 7675's consent expiry.
            ice_failed_timeout: Duration::from_secs(20),
            ice_connect_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "media bind address {0} is a wildcard: set the address to announce to clients (media.announce)"
    )]
    NoAnnounceAddress(SocketAddr),
    #[error(transparent)]
    Media(#[from] MediaPlaneError),
    #[error(transparent)]
    Peer(#[from] PeerError),
}

/// A started media plane and the peer factory for its address.
pub struct Media {
    pub plane: MediaPlane,
    pub peers: PeerFactory,
}

/// Binds the media socket and starts the media workers.
pub fn start(config: &MediaConfig) -> Result<Media, StartError> {
    if config.bind.ip().is_unspecified() && config.announce.is_none() {
        return Err(StartError::NoAnnounceAddress(config.bind));
    }
    let plane = MediaPlane::start(MediaPlaneConfig {
        bind: config.bind,
        workers: config.workers,
    })?;
    let mut announce = plane.local_addr();
    if let Some(ip) = config.announce {
        announce.set_ip(ip);
    }
    let peers = PeerFactory::new(announce)?.with_liveness(liveness(config));
    Ok(Media { plane, peers })
}

fn liveness(config: &MediaConfig) -> LivenessConfig {
    let lost_after = config.ice_disconnected_timeout + config.ice_failed_timeout;
    LivenessConfig {
        disconnected_after: config.ice_disconnected_timeout,
        lost_after,
        connect_timeout: config.ice_connect_timeout,
        // A path silent as long as a whole connection may be is as good as gone.
        route_expiry: lost_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_bind_needs_an_announce_address() {
        let config = MediaConfig {
            bind: "0.0.0.0:0".parse().unwrap(),
            ..MediaConfig::default()
        };
        let err = start(&config).err();
        assert!(
            matches!(err, Some(StartError::NoAnnounceAddress(_))),
            "{err:?}"
        );
    }

    #[test]
    fn the_announce_address_keeps_the_bound_port() {
        let config = MediaConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            announce: Some(IpAddr::from([192, 0, 2, 7])),
            workers: 1,
            ..MediaConfig::default()
        };
        let media = start(&config).unwrap();
        let bound = media.plane.local_addr();
        assert_eq!(
            media.peers.announce(),
            SocketAddr::from(([192, 0, 2, 7], bound.port()))
        );
        media.plane.stop();
    }
}
