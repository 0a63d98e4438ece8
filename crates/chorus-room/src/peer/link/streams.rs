//! Publisher side: which of the client's streams an incoming RTP packet belongs to. By
//! SSRC as its SDP lists it, else by the MID header extension; on a simulcast section
//! also by the rid extension, which names the layer (its first packets carry it; the
//! SSRC is remembered from then on). A packet with a rid but no MID is placed when one
//! simulcast section alone has that rid (a sender that tags its layers with rids only,
//! as `chorus-client`'s simulcast camera does).

use std::collections::HashMap;
use std::sync::Arc;

use rtc::rtp::header::Header;

use crate::tracks::LayerIndex;

/// One of the client's tracks on a publisher connection (and, for simulcast, the layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpStream {
    pub sdp_track: Arc<str>,
    pub video: bool,
    pub layer: Option<LayerIndex>,
}

/// One m-section the client sends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpSection {
    pub stream: UpStream,
    /// Simulcast: its rids, lowest quality first (a layer's index is its place here).
    pub rids: Vec<String>,
    pub rid_ext: Option<u8>,
}

/// The stream a packet belongs to; `None` until it can be told (an SSRC no SDP lists,
/// without the MID extension, or on a simulcast section without a known rid: a packet
/// with only a repaired rid is RTX, which Chorus does not negotiate).
pub fn stream_of(
    by_ssrc: &mut HashMap<u32, UpStream>,
    by_mid: &HashMap<String, UpSection>,
    mid_ext: Option<u8>,
    header: &Header,
) -> Option<UpStream> {
    if let Some(up) = by_ssrc.get(&header.ssrc) {
        return Some(up.clone());
    }
    let mid = mid_ext.and_then(|id| header.get_extension(id));
    let up = match mid {
        Some(mid) => {
            let section = by_mid.get(std::str::from_utf8(&mid).ok()?)?;
            if section.rids.is_empty() {
                section.stream.clone()
            } else {
                layer_of(section, header)?
            }
        }
        None => {
            let mut placed = by_mid.values().filter_map(|s| layer_of(s, header));
            let up = placed.next()?;
            if placed.next().is_some() {
                return None;
            }
            up
        }
    };
    by_ssrc.insert(header.ssrc, up.clone());
    Some(up)
}

/// The layer of simulcast `section` whose rid the packet carries.
fn layer_of(section: &UpSection, header: &Header) -> Option<UpStream> {
    let rid = header.get_extension(section.rid_ext?)?;
    let index = section.rids.iter().position(|r| r.as_bytes() == &rid[..])?;
    Some(UpStream {
        layer: Some(LayerIndex(index as u8)),
        ..section.stream.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtc::rtp::header::{EXTENSION_PROFILE_ONE_BYTE, Extension};

    const MID: u8 = 9;
    const RID: u8 = 10;
    const RRID: u8 = 11;

    fn header(ssrc: u32, extensions: &[(u8, &str)]) -> Header {
        Header {
            version: 2,
            ssrc,
            extension: !extensions.is_empty(),
            extension_profile: EXTENSION_PROFILE_ONE_BYTE,
            extensions: extensions
                .iter()
                .map(|(id, v)| Extension {
                    id: *id,
                    payload: Bytes::copy_from_slice(v.as_bytes()),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn up(track: &str, layer: Option<u8>) -> UpStream {
        UpStream {
            sdp_track: track.into(),
            video: true,
            layer: layer.map(LayerIndex),
        }
    }

    #[test]
    fn simulcast_layers_are_told_by_rid_and_remembered_by_ssrc() {
        let mut by_ssrc = HashMap::from([(7, up("plain", None))]);
        let by_mid = HashMap::from([
            (
                "1".to_owned(),
                UpSection {
                    stream: up("cam", None),
                    rids: ["q", "h", "f"].map(str::to_owned).to_vec(),
                    rid_ext: Some(RID),
                },
            ),
            (
                "2".to_owned(),
                UpSection {
                    stream: up("screen", None),
                    rids: Vec::new(),
                    rid_ext: None,
                },
            ),
        ]);
        let cases: [(&str, Header, Option<UpStream>); 8] = [
            ("listed ssrc", header(7, &[]), Some(up("plain", None))),
            (
                "plain section by mid",
                header(8, &[(MID, "2")]),
                Some(up("screen", None)),
            ),
            (
                "f",
                header(31, &[(MID, "1"), (RID, "f")]),
                Some(up("cam", Some(2))),
            ),
            (
                "q",
                header(11, &[(RID, "q"), (MID, "1")]),
                Some(up("cam", Some(0))),
            ),
            (
                "f again, no extensions now",
                header(31, &[]),
                Some(up("cam", Some(2))),
            ),
            ("no rid yet", header(21, &[(MID, "1")]), None),
            (
                "RTX: only a repaired rid",
                header(41, &[(MID, "1"), (RRID, "h")]),
                None,
            ),
            (
                "a rid not offered",
                header(51, &[(MID, "1"), (RID, "x")]),
                None,
            ),
        ];
        for (name, h, want) in cases {
            assert_eq!(
                stream_of(&mut by_ssrc, &by_mid, Some(MID), &h),
                want,
                "{name}"
            );
        }
        // h is placed once its rid comes; without a MID too, the rid being the one
        // section's.
        let h = header(21, &[(MID, "1"), (RID, "h")]);
        assert_eq!(
            stream_of(&mut by_ssrc, &by_mid, Some(MID), &h),
            Some(up("cam", Some(1)))
        );
        let q = header(61, &[(RID, "q")]);
        assert_eq!(
            stream_of(&mut by_ssrc, &by_mid, None, &q),
            Some(up("cam", Some(0)))
        );
        assert_eq!(by_ssrc.len(), 6);
    }

    #[test]
    fn a_rid_without_mid_is_not_placed_when_two_sections_have_it() {
        let section = |track: &str| UpSection {
            stream: up(track, None),
            rids: vec!["q".to_owned()],
            rid_ext: Some(RID),
        };
        let by_mid = HashMap::from([
            ("1".to_owned(), section("cam")),
            ("2".to_owned(), section("screen")),
        ]);
        let mut by_ssrc = HashMap::new();
        let q = header(5, &[(RID, "q")]);
        assert_eq!(stream_of(&mut by_ssrc, &by_mid, Some(MID), &q), None);
        assert!(by_ssrc.is_empty());
    }
}
