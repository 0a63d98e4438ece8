//! How a subscriber asks for a keyframe: the RTCP forms different clients send (a lone
//! PLI or FIR, or either in a compound packet after an RR and an SDES).

use bytes::Bytes;
use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};

/// The RTCP in which a subscriber asks for a keyframe, as different clients send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeRequestForm {
    /// A lone PLI (reduced-size RTCP, as browsers send it).
    Pli,
    /// A lone FIR.
    Fir,
    /// An RR without report blocks, an SDES with a CNAME, then a PLI: what GStreamer's
    /// webrtcbin sends.
    CompoundPli,
    /// An RR without report blocks, an SDES with a CNAME, then a FIR.
    CompoundFir,
}

impl KeyframeRequestForm {
    /// Our SSRC as the sender of compound feedback: a receive-only endpoint has no
    /// media SSRC of its own to report from.
    const FEEDBACK_SSRC: u32 = 0xC40C_0001;

    pub(crate) fn is_fir(self) -> bool {
        matches!(self, Self::Fir | Self::CompoundFir)
    }

    /// The packets asking `media_ssrc` for a keyframe; `fir_seq` numbers a FIR.
    pub(crate) fn packets(self, media_ssrc: u32, fir_seq: u8) -> Vec<Box<dyn rtcp::Packet>> {
        let sender_ssrc = Self::FEEDBACK_SSRC;
        let mut packets: Vec<Box<dyn rtcp::Packet>> = Vec::with_capacity(3);
        if matches!(self, Self::CompoundPli | Self::CompoundFir) {
            packets.push(Box::new(ReceiverReport {
                ssrc: sender_ssrc,
                ..Default::default()
            }));
            packets.push(Box::new(SourceDescription {
                chunks: vec![SourceDescriptionChunk {
                    source: sender_ssrc,
                    items: vec![SourceDescriptionItem {
                        sdes_type: SdesType::SdesCname,
                        text: Bytes::from_static(b"chorus-client"),
                    }],
                }],
            }));
        }
        if self.is_fir() {
            packets.push(Box::new(FullIntraRequest {
                sender_ssrc,
                // RFC 5104: unused in a FIR, whose entries name the streams.
                media_ssrc: 0,
                fir: vec![FirEntry {
                    ssrc: media_ssrc,
                    sequence_number: fir_seq,
                }],
            }));
        } else {
            packets.push(Box::new(PictureLossIndication {
                sender_ssrc,
                media_ssrc,
            }));
        }
        packets
    }
}
