//! The hand-offs between a plain-RTP participant's task and its room, both without
//! waiting: a frame either side could not take is lost and counted (`room_busy`,
//! `mix_behind` in the room's plain-RTP drops), never queued without bound.

use chorus_plainrtp::driver::MixFrame;
use chorus_plainrtp::{DropCounts, DropReason, InboundFrame};
use tokio::sync::mpsc;

use crate::command::RoomCommand;
use crate::io::ParticipantKey;

/// A frame of the participant's voice to the room; false once the room is gone.
pub(crate) fn frame_to_room(
    commands: &mpsc::Sender<RoomCommand>,
    participant: ParticipantKey,
    frame: InboundFrame,
    drops: &DropCounts,
) -> bool {
    match commands.try_send(RoomCommand::RtpFrame { participant, frame }) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            drops.add(DropReason::RoomBusy);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// A frame of the room's mix to the participant's task (gone already: nothing to do).
pub(crate) fn mix_to_task(tx: &mpsc::Sender<MixFrame>, frame: MixFrame, drops: &DropCounts) {
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(frame) {
        drops.add(DropReason::MixBehind);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chorus_plainrtp::driver::MixData;

    use super::*;

    fn voice(seq: u64) -> InboundFrame {
        InboundFrame {
            seq,
            pcm: vec![0; 960],
        }
    }

    fn mix(seq: u64) -> MixFrame {
        MixFrame {
            seq,
            audio: MixData::Pcm(Arc::from(vec![0i16; 960])),
        }
    }

    #[test]
    fn a_full_room_loses_the_frame_and_counts_it_a_closed_one_ends_the_task() {
        let drops = DropCounts::default();
        let key = ParticipantKey(7);
        let (tx, mut rx) = mpsc::channel(1);
        assert!(frame_to_room(&tx, key, voice(1), &drops));
        assert_eq!(drops.get(DropReason::RoomBusy), 0);
        assert!(
            frame_to_room(&tx, key, voice(2), &drops),
            "full: the task goes on"
        );
        assert_eq!(drops.get(DropReason::RoomBusy), 1);
        assert!(matches!(rx.try_recv(), Ok(RoomCommand::RtpFrame { frame, .. }) if frame.seq == 1));
        drop(rx);
        assert!(
            !frame_to_room(&tx, key, voice(3), &drops),
            "closed: the task ends"
        );
        assert_eq!(
            drops.get(DropReason::RoomBusy),
            1,
            "a closed room is not a drop"
        );
    }

    #[test]
    fn a_task_behind_loses_the_mix_frame_and_it_is_counted() {
        let drops = DropCounts::default();
        let (tx, mut rx) = mpsc::channel(1);
        mix_to_task(&tx, mix(1), &drops);
        mix_to_task(&tx, mix(2), &drops);
        assert_eq!(drops.get(DropReason::MixBehind), 1);
        assert_eq!(rx.try_recv().map(|f| f.seq).ok(), Some(1));
        drop(rx);
        mix_to_task(&tx, mix(3), &drops);
        assert_eq!(
            drops.get(DropReason::MixBehind),
            1,
            "a task gone is not behind"
        );
    }
}
