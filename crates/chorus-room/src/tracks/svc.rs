//! What is known of a VP9 SVC track as it arrives (one stream, spatial layers told by
//! each packet's SID): each spatial layer's bitrate, which layers arrive, and the
//! layers and top size its last scalability structure (SS, on keyframes) gave.

use std::time::Instant;

use chorus_core::{SpatialLayer, Vp9Descriptor};
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
}

impl SvcUpstream {
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
        let before = self.structure;
        if let Some(ss) = d.structure {
            let n = usize::from(ss.spatial_layers).min(SpatialLayer::COUNT);
            let top = ss
                .resolution(n as u8 - 1)
                .map(|(w, h)| (u32::from(w), u32::from(h)))
                .filter(|&(w, h)| w > 0 && h > 0);
            self.structure = Some((n, top));
            if self.most.is_none_or(|(most, _)| n >= most) {
                self.most = Some((n, top.unwrap_or(ASSUMED_TOP_SIZE)));
            }
        }
        if let Some(stats) = self.layers.get_mut(usize::from(d.sid())) {
            // Each layer frame of a keyframe picture starts without inter-picture
            // prediction (the upper ones predicted from the lower only).
            let keyframe = d.begins_frame && !d.inter_picture;
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
    /// highest arriving as `forwarded`.
    pub fn stats(&self, track_id: String, ssrc: Option<u32>, now: Instant) -> SimulcastStats {
        let seen = self
            .layers
            .iter()
            .rposition(|l| l.packets > 0)
            .map_or(0, |i| i + 1);
        let n = self.structure.map_or(seen, |(n, _)| n);
        let layers = self.layers.iter().take(n).enumerate();
        let top = self.active(now).best_up_to(SpatialLayer::HIGH);
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
