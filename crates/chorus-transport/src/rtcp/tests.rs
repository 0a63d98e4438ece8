//! Both directions against webrtc-rs's own (independent) RTCP marshalling, plus
//! hand-crafted bytes for the forms it does not produce. The shared fixtures are here;
//! `read` and `write` hold the tests of each direction.

mod read;
mod write;

use bytes::Bytes;
use chorus_core::reports::{ReportBlock, SenderInfo};
use rtc::rtcp::Packet;
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc,
    TransportLayerCc,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};

use super::*;

/// The remote end's own SSRC, the one feedback comes from.
const S: u32 = 0x0A11_CE00;
/// A media stream.
const M: u32 = 0x5E47_0001;
const M2: u32 = 0x5E47_0002;

type Boxed = Box<dyn Packet>;

fn marshal(packets: Vec<Boxed>) -> Vec<u8> {
    rtc::rtcp::packet::marshal(&packets).unwrap().to_vec()
}

fn unmarshal(bytes: &[u8]) -> Vec<Boxed> {
    rtc::rtcp::packet::unmarshal(&mut &bytes[..]).unwrap()
}

fn parse(bytes: &[u8]) -> Result<(Vec<Feedback>, Parsed), RtcpError> {
    let mut out = Vec::new();
    parse_compound(bytes, &mut out).map(|parsed| (out, parsed))
}

fn read(n: u32) -> Parsed {
    Parsed {
        read: n,
        ..Parsed::default()
    }
}

/// A packet built by hand: header from `count`, `pt` and the body's length.
fn raw(count: u8, pt: u8, body: &[u32]) -> Vec<u8> {
    let mut b = vec![0x80 | count, pt, 0, body.len() as u8];
    body.iter().for_each(|w| b.extend(w.to_be_bytes()));
    b
}

/// webrtc-rs's NACK from `S` about `M`, as (packet id, bitmask of the 16 after it) pairs.
fn nack_pairs(pairs: &[(u16, u16)]) -> TransportLayerNack {
    TransportLayerNack {
        sender_ssrc: S,
        media_ssrc: M,
        nacks: pairs
            .iter()
            .map(|&(packet_id, lost_packets)| NackPair {
                packet_id,
                lost_packets,
            })
            .collect(),
    }
}

fn pli() -> Feedback {
    Feedback::Pli {
        sender_ssrc: S,
        media_ssrc: M,
    }
}

fn block(ssrc: u32, fraction_lost: u8, cumulative_lost: i32) -> ReportBlockIn {
    ReportBlockIn {
        ssrc,
        fraction_lost,
        cumulative_lost,
        highest_seq: 0x0001_0203,
        jitter: 44,
        last_sr: 0xAABB_CCDD,
        delay_since_last_sr: 65_536,
    }
}

fn reception(ssrc: u32, fraction_lost: u8, total_lost: u32) -> ReceptionReport {
    ReceptionReport {
        ssrc,
        fraction_lost,
        total_lost,
        last_sequence_number: 0x0001_0203,
        jitter: 44,
        last_sender_report: 0xAABB_CCDD,
        delay: 65_536,
    }
}

fn sdes(ssrc: u32, cname: &[u8]) -> SourceDescription {
    SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: ssrc,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: Bytes::copy_from_slice(cname),
            }],
        }],
    }
}

fn rr(reports: Vec<ReceptionReport>) -> ReceiverReport {
    ReceiverReport {
        ssrc: S,
        reports,
        ..Default::default()
    }
}
