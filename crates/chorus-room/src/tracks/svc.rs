//! What is known of an SVC track as it arrives (one stream, spatial layers told by
//! each packet's SID): each spatial layer's bitrate, which layers arrive, and the
//! layers and top size its last structure gave: of VP9, the scalability structure (SS)
//! in the payload descriptor of keyframes; of AV1, the template dependency structure in
//! the dependency descriptor (a header extension) of keyframes.

use std::time::Instant;

use chorus_core::{DependencyDescriptorReader, SpatialLayer, SvcLayers, Vp9Descriptor};
use chorus_protocol::control::SimulcastStats;

use super::layer_stats::LayerStats;
use super::simulcast::LAYER_TIMEOUT;
use crate::selection::{ASSUMED_TOP_SIZE, ActiveLayers};

#[derive(Debug, Clone, Default)]
pub struct SvcUpstream {
    /// Per SID (those above the third are forwarded to no one and not measured).
    layers: [LayerStats; SpatialLayer::COUNT],
    /// From the last SS: spatial layers (at most three counted) and the top one's size.
    structure: Option<(usize, Option<(u32, u32)>)>,
    /// The most spatial layers an SS announced, and the top one's size then: what the
    /// publisher may send, told to it (dynacast) even while it sends fewer.
    most: Option<(usize, (u32, u32))>,
    /// AV1: its dependency descriptors; `None` for VP9.
    descriptors: Option<Descriptors>,
}

/// An AV1 stream's dependency descriptors, read in order (a packet's template is in the
/// structure of the last keyframe).
#[derive(Debug, Clone)]
struct Descriptors {
    /// The header extension's negotiated id.
    ext: u8,
    reader: DependencyDescriptorReader,
    /// RTP timestamp of the last keyframe picture: each of its layer frames is its
    /// layer's keyframe (the upper ones predicted from the lower only).
    keyframe_ts: Option<u32>,
}

impl SvcUpstream {
    /// An AV1 stream whose layers its dependency descriptors (extension `ext`) tell.
    pub fn av1(ext: u8) -> Self {
        Self {
            descriptors: Some(Descriptors {
                ext,
                reader: DependencyDescriptorReader::default(),
                keyframe_ts: None,
            }),
            ..Self::default()
        }
    }

    /// AV1: the id of the extension its layers are read from.
    pub fn dd_ext(&self) -> Option<u8> {
        self.descriptors.as_ref().map(|d| d.ext)
    }

    /// An AV1 packet of `bytes` payload with RTP timestamp `ts` and dependency
    /// descriptor `data` (if it carries one) arrived at `now`: where it sits in the
    /// layers (`None` if the descriptor is missing or does not read: no structure yet,
    /// malformed), and whether it changed the layers there are or their size.
    pub fn received_dd(
        &mut self,
        data: Option<&[u8]>,
        ts: u32,
        bytes: usize,
        now: Instant,
    ) -> (Option<SvcLayers>, bool) {
        let Some(dd) = self.descriptors.as_mut() else {
            return (None, false);
        };
        let Some(frame) = data.and_then(|data| dd.reader.read(data).ok()) else {
            return (None, false);
        };
        let structure = dd.reader.structure().expect("a descriptor read has one");
        let layers = SvcLayers::of_dd(&frame, structure);
        // The spatial layers sent: those of the decode targets the encoder produces
        // (told with a new structure, and whenever they change: an encoder turning its
        // top layer off keeps the structure and says so here).
        let new = frame.active_decode_targets.map(|active| {
            let targets = structure.decode_target_layers.iter().enumerate();
            let top_sid = targets
                .filter(|(dt, _)| active & (1 << dt) != 0)
                .map(|(_, &(sid, _))| sid)
                .max()
                .unwrap_or(0);
            let n = (usize::from(top_sid) + 1).min(SpatialLayer::COUNT);
            let top = structure.resolutions.as_ref().and_then(|r| r.get(n - 1));
            (n, top.map(|&(w, h)| (u32::from(w), u32::from(h))))
        });
        if frame.starts_keyframe() {
            dd.keyframe_ts = Some(ts);
        }
        let keyframe = frame.start_of_frame && dd.keyframe_ts == Some(ts);
        let changed = self.record(frame.spatial_id, keyframe, new, ts, bytes, now);
        (Some(layers), changed)
    }

    /// A packet of `bytes` payload with RTP timestamp `ts` and descriptor `d` (if one
    /// could be read) arrived at `now`. Whether it changed the layers there are or
    /// their size (a publisher starts with fewer spatial layers while its bandwidth
    /// estimate is low, and adds them as it grows).
    pub fn received(
        &mut self,
        d: Option<&Vp9Descriptor>,
        ts: u32,
        bytes: usize,
        now: Instant,
    ) -> bool {
        let Some(d) = d else {
            return false;
        };
        let structure = d.structure.map(|ss| {
            let n = usize::from(ss.spatial_layers).min(SpatialLayer::COUNT);
            let top = ss.resolution(n as u8 - 1);
            (n, top.map(|(w, h)| (u32::from(w), u32::from(h))))
        });
        // Each layer frame of a keyframe picture starts without inter-picture
        // prediction (the upper ones predicted from the lower only).
        let keyframe = d.begins_frame && !d.inter_picture;
        self.record(d.sid(), keyframe, structure, ts, bytes, now)
    }

    /// A packet of spatial layer `sid` (the first of a keyframe's layer frame if
    /// `keyframe`), with the structure it carries (spatial layers, top size): whether
    /// the structure changed.
    fn record(
        &mut self,
        sid: u8,
        keyframe: bool,
        structure: Option<(usize, Option<(u32, u32)>)>,
        ts: u32,
        bytes: usize,
        now: Instant,
    ) -> bool {
        let before = self.structure;
        if let Some((n, top)) = structure {
            let top = top.filter(|&(w, h)| w > 0 && h > 0);
            self.structure = Some((n, top));
            if self.most.is_none_or(|(most, _)| n >= most) {
                self.most = Some((n, top.unwrap_or(ASSUMED_TOP_SIZE)));
            }
        }
        if let Some(stats) = self.layers.get_mut(usize::from(sid)) {
            stats.record(now, bytes, ts, keyframe);
        }
        self.structure != before
    }

    /// The spatial layers there are: as the last SS said, else three (what
    /// `L3T3_KEY` sends; a subscriber's target is capped by those arriving anyway).
    pub fn layer_count(&self) -> usize {
        self.structure.map_or(SpatialLayer::COUNT, |(n, _)| n)
    }

    /// The most spatial layers any SS announced, with the top one's size then (else
    /// [`ASSUMED_TOP_SIZE`]); `None` before the first SS.
    pub fn most_layers(&self) -> Option<(usize, (u32, u32))> {
        self.most
    }

    /// The top layer's size: as the last SS said, else [`ASSUMED_TOP_SIZE`].
    pub fn top_size(&self) -> (u32, u32) {
        self.structure
            .and_then(|(_, top)| top)
            .unwrap_or(ASSUMED_TOP_SIZE)
    }

    /// The spatial layers subscribers may be sent at `now`: those arriving of VP9; of
    /// AV1 the base layer alone. The dependency descriptor is not forwarded, and without
    /// it Chromium (156) decodes one spatial layer only: given two or three it stops at
    /// the first picture with more than one (framesDecoded stalls, a PLI every ~200 ms,
    /// no keyframe decoded again), and given them all from the start it decodes nothing
    /// (tests/browser/av1.js). Its layers are still read, measured and told.
    pub fn forwardable(&self, now: Instant) -> ActiveLayers {
        if self.base_only() {
            ActiveLayers(1)
        } else {
            self.active(now)
        }
    }

    /// Whether subscribers get its base layer alone (AV1: see [`Self::forwardable`]),
    /// whatever they ask for: the upper layers are nobody's to need.
    pub fn base_only(&self) -> bool {
        self.descriptors.is_some()
    }

    /// The layers arriving: those of the last SS (the keyframe that carries it comes
    /// before its upper layers, and a subscriber should aim at them from it on), else
    /// those seen in the last second.
    pub fn active(&self, now: Instant) -> ActiveLayers {
        match self.structure {
            Some((n, _)) => ActiveLayers((1u8 << n) - 1),
            None => ActiveLayers(
                self.layers
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.active(now, LAYER_TIMEOUT))
                    .fold(0, |m, (i, _)| m | 1 << i),
            ),
        }
    }

    /// What forwarding up to each spatial layer costs (bits per second): that layer
    /// and every one below it, since an upper layer frame is sent with the lower ones.
    pub fn cumulative_bitrates(&self, now: Instant) -> [Option<u64>; SpatialLayer::COUNT] {
        let mut sum = 0;
        let mut out = [None; SpatialLayer::COUNT];
        for (slot, layer) in out.iter_mut().zip(&self.layers).take(self.layer_count()) {
            sum += layer.bitrate_bps(now);
            *slot = Some(sum);
        }
        out
    }

    /// The layer names told to clients (a track's `layers`): `s0`, `s1`, … as the
    /// last SS said; none before one came (nothing is known yet).
    pub fn names(&self) -> Vec<String> {
        let n = self.structure.map_or(0, |(n, _)| n);
        (0..n).map(name).collect()
    }

    /// What the control API reports of it at `now` (the stream's SSRC is `ssrc`): the
    /// spatial layers as the last SS said, else those that arrived so far; the
    /// highest subscribers may be sent as `forwarded`.
    pub fn stats(&self, track_id: String, ssrc: Option<u32>, now: Instant) -> SimulcastStats {
        let seen = self
            .layers
            .iter()
            .rposition(|l| l.packets > 0)
            .map_or(0, |i| i + 1);
        let n = self.structure.map_or(seen, |(n, _)| n);
        let layers = self.layers.iter().take(n).enumerate();
        let top = self.forwardable(now).best_up_to(SpatialLayer::HIGH);
        SimulcastStats {
            track_id,
            forwarded: top.map(|l| name(l.index())),
            layers: layers
                .map(|(i, l)| l.report(name(i), i as u8, ssrc, now))
                .collect(),
            svc: true,
        }
    }
}

/// A spatial layer's name in `TrackInfo.layers`.
fn name(sid: usize) -> String {
    format!("s{sid}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Bytes from `0`/`1` digits (anything else for reading), zero padded.
    fn bits(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| matches!(b, b'0' | b'1')).collect();
        let byte = |c: &[u8]| c.iter().fold(0u8, |a, d| (a << 1) | (d - b'0')) << (8 - c.len());
        digits.chunks(8).map(byte).collect()
    }

    #[test]
    fn av1_layers_and_size_come_from_the_structure_and_the_active_targets() {
        let t0 = Instant::now();
        let mut s = SvcUpstream::av1(7);
        assert_eq!(s.dd_ext(), Some(7));
        // L2T1: decode targets S0 and S0+S1, two templates, no chains, 320x180 and
        // 640x360; the keyframe's first packet.
        let key = bits(concat!(
            "1 1 000000 0000000000000000 1 0 0 0 0", // template 0, frame 0, structure
            "000000 00001 10 11",                    // offset 0, 2 targets; S0T0 | S1T0
            "10 10 00 10  0 0  0",                   // DTIs S S, - S; no fdiffs; no chains
            "1 0000000100111111 0000000010110011 0000001001111111 0000000101100111",
        ));
        assert_eq!(s.received_dd(None, 0, 100, t0), (None, false), "none yet");
        let (layers, changed) = s.received_dd(Some(&key), 0, 100, t0);
        assert!(changed);
        assert_eq!(layers.map(|l| (l.sid, l.begins_frame)), Some((0, true)));
        assert_eq!((s.layer_count(), s.top_size()), (2, (640, 360)));
        assert_eq!(s.names(), ["s0", "s1"]);
        // Its upper layer frame (template 1): a keyframe of layer 1 too, same picture.
        let upper = bits("1 1 000001 0000000000000001");
        let (layers, changed) = s.received_dd(Some(&upper), 0, 300, t0);
        assert_eq!((layers.map(|l| l.sid), changed), (Some(1), false));
        let report = s.stats("TR_1".into(), Some(9), t0);
        let ages: Vec<_> = report.layers.iter().map(|l| l.keyframe_age_ms).collect();
        assert_eq!(ages, [Some(0), Some(0)]);
        // Both arrive, the base layer alone goes to subscribers (no descriptor for them).
        assert_eq!(s.active(t0), ActiveLayers(0b11));
        assert_eq!(s.forwardable(t0), ActiveLayers(0b01));
        assert_eq!(report.forwarded.as_deref(), Some("s0"));
        // The encoder turns S1 off: only decode target 0 active.
        let active = bits("1 1 000000 0000000000000010 0 1 0 0 0 01");
        let (_, changed) = s.received_dd(Some(&active), 3000, 100, t0);
        assert!(changed);
        assert_eq!((s.layer_count(), s.top_size()), (1, (320, 180)));
        assert_eq!(s.most_layers(), Some((2, (640, 360))), "what it may send");
        // Malformed: no layers, nothing changes.
        let unknown = bits("1 1 000101 0000000000000011");
        assert_eq!(s.received_dd(Some(&unknown), 6000, 100, t0), (None, false));
        assert_eq!(SvcUpstream::default().dd_ext(), None, "VP9");
    }

    fn descriptor(sid: u8, structure: Option<(u8, (u16, u16))>) -> Vp9Descriptor {
        let mut bytes = vec![0x28 | u8::from(structure.is_some()) << 1, sid << 1, 0];
        if let Some((n, (w, h))) = structure {
            bytes.push(((n - 1) << 5) | 0x10);
            for i in (0..n).rev() {
                bytes.extend((w >> i).to_be_bytes());
                bytes.extend((h >> i).to_be_bytes());
            }
        }
        Vp9Descriptor::parse(&bytes).unwrap()
    }

    #[test]
    fn layers_costs_and_size_come_from_the_stream() {
        let t0 = Instant::now();
        let mut s = SvcUpstream::default();
        assert_eq!(s.layer_count(), 3, "assumed before anything arrives");
        assert_eq!(s.top_size(), ASSUMED_TOP_SIZE);
        // Without SS: the layers seen.
        assert!(!s.received(Some(&descriptor(0, None)), 0, 100, t0));
        s.received(Some(&descriptor(1, None)), 0, 300, t0);
        assert_eq!(s.active(t0), ActiveLayers(0b011));
        assert!(s.names().is_empty(), "told only from an SS");
        assert_eq!(
            s.active(t0 + LAYER_TIMEOUT + Duration::from_millis(10)),
            ActiveLayers(0)
        );
        // SS of two layers, top 640×360.
        assert!(s.received(Some(&descriptor(0, Some((2, (640, 360))))), 0, 100, t0));
        assert!(
            !s.received(Some(&descriptor(0, Some((2, (640, 360))))), 0, 0, t0),
            "the same again"
        );
        assert_eq!((s.layer_count(), s.top_size()), (2, (640, 360)));
        assert_eq!(s.most_layers(), Some((2, (640, 360))));
        assert_eq!(s.active(t0), ActiveLayers(0b011));
        assert_eq!(s.names(), ["s0", "s1"]);
        // Cumulative: layer 1 costs its bytes and layer 0's.
        let bps = s.cumulative_bitrates(t0);
        assert_eq!(bps, [Some(200 * 8), Some(500 * 8), None]);
        assert!(!s.received(None, 0, 1000, t0));
        assert_eq!(s.cumulative_bitrates(t0), bps, "nothing to place it by");

        // Reported per spatial layer, all on the stream's SSRC; the upper layer's
        // keyframe is the layer frame of a keyframe picture.
        let report = s.stats("TR_1".into(), Some(9), t0);
        assert!(report.svc);
        assert_eq!(report.forwarded.as_deref(), Some("s1"));
        let got: Vec<_> = report
            .layers
            .iter()
            .map(|l| (l.rid.as_str(), l.index, l.ssrc, l.bytes, l.keyframe_age_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("s0", 0, Some(9), 200, Some(0)),
                ("s1", 1, Some(9), 300, Some(0))
            ]
        );

        // The encoder drops to one layer: the most it announced stays what it may send.
        assert!(s.received(Some(&descriptor(0, Some((1, (320, 180))))), 0, 100, t0));
        assert_eq!((s.layer_count(), s.names().len()), (1, 1));
        assert_eq!(s.most_layers(), Some((2, (640, 360))));
    }
}
