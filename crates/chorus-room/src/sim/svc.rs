//! A simulated camera sending VP9 in one stream of three spatial and three temporal
//! layers, as Chromium sends `L3T3_KEY`: each picture is one packet per spatial layer
//! (lowest first, a size of its own so a receiver can tell them apart), TIDs 0, 2, 1, 2
//! in turn, the scalability structure (320×180, 640×360, 1280×720) on keyframes, and
//! the RTP marker on the last packet of the picture. Like Chromium while its bandwidth
//! estimate grows, it starts with the lower two layers only (up to 640×360) and adds
//! the third at a keyframe after [`SVC_FULL_AT`] pictures.

use bytes::Bytes;

use super::{ClientId, Sim};

/// Payload bytes of each spatial layer's packet, lowest first.
pub const SVC_LAYER_SIZES: [usize; 3] = [200, 400, 800];

/// The picture (a keyframe) from which all three spatial layers are sent: one second.
pub const SVC_FULL_AT: usize = 30;

/// The payloads of picture `index` (RFC 9628 descriptors, non-flexible mode).
pub(super) fn vp9_picture(keyframe: bool, index: usize) -> Vec<Bytes> {
    let layers = if index < SVC_FULL_AT { 2 } else { 3 };
    let sizes: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];
    let tid: u8 = if keyframe { 0 } else { [0, 2, 1, 2][index % 4] };
    let picture_id = (index & 0x7fff) as u16;
    SVC_LAYER_SIZES[..layers]
        .iter()
        .zip(0u8..)
        .map(|(&size, sid)| {
            let ss = keyframe && sid == 0;
            // I, P unless a keyframe, L, B, E, V with the SS.
            let first = 0x80 | 0x20 | 0x08 | 0x04 | u8::from(!keyframe) << 6 | u8::from(ss) << 1;
            let [hi, lo] = picture_id.to_be_bytes();
            let layer =
                tid << 5 | u8::from(tid > 0) << 4 | sid << 1 | u8::from(keyframe && sid > 0);
            let tl0 = (index / 4) as u8;
            let mut p = vec![first, 0x80 | hi, lo, layer, tl0];
            if ss {
                p.push(((layers as u8 - 1) << 5) | 0x10);
                for &(w, h) in &sizes[..layers] {
                    p.extend(w.to_be_bytes());
                    p.extend(h.to_be_bytes());
                }
            }
            p.resize(size, 0x5a);
            Bytes::from(p)
        })
        .collect()
}

impl Sim {
    /// Joins with every grant, its publisher connection offering VP9 only.
    pub fn join_svc(&mut self, identity: &str) -> ClientId {
        let id = self.join(identity);
        let now = self.now;
        self.clients[id.0].enable_svc(now);
        id
    }

    /// Publishes a camera in VP9 SVC layers; the client must have joined with
    /// [`Self::join_svc`] (or [`Self::join_av1`]: then AV1 L3T3 with dependency
    /// descriptors, `av1.rs`). Returns the server's track id.
    pub fn publish_svc(&mut self, c: ClientId) -> String {
        let cid = self.clients[c.0].announce(chorus_protocol::TrackSource::Camera);
        self.clients[c.0].svc_cids.push(cid.clone());
        self.published(c, &cid)
    }
}

#[cfg(test)]
mod tests {
    use chorus_core::{SvcLayers, Vp9Descriptor};

    #[test]
    fn pictures_read_back_as_written() {
        let key = super::vp9_picture(true, super::SVC_FULL_AT);
        let d: Vec<Vp9Descriptor> = key
            .iter()
            .map(|p| Vp9Descriptor::parse(p).unwrap())
            .collect();
        assert!(d[0].starts_keyframe() && d[0].structure.is_some());
        assert_eq!(d[2].structure, None);
        assert_eq!(d.iter().map(|d| d.sid()).collect::<Vec<_>>(), [0, 1, 2]);
        let delta = super::vp9_picture(false, 5);
        let l = SvcLayers::of(&Vp9Descriptor::parse(&delta[1]).unwrap());
        assert_eq!((l.sid, l.tid, l.switching_up), (1, 2, true));
        assert!(!Vp9Descriptor::parse(&delta[0]).unwrap().starts_keyframe());
        assert_eq!(delta.len(), 2, "two layers at first");
        let first = Vp9Descriptor::parse(&super::vp9_picture(true, 0)[0]).unwrap();
        let ss = first.structure.unwrap();
        assert_eq!((ss.spatial_layers, ss.resolution(1)), (2, Some((640, 360))));
    }
}
