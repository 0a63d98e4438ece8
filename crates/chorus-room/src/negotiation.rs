//! The offer/answer state of one subscriber connection, where the server is the only
//! offerer. At most one offer is out; changes made meanwhile wait for its answer and go
//! in the next one. Each track on the connection has a [`TrackPhase`]: media flows only
//! once the client's answer carried it (packets sent before would be dropped by the
//! client, the first keyframe with them).

/// Where one track stands in offer/answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackPhase {
    /// Added; the next offer will carry it.
    Pending,
    /// In the offer that is out.
    Offered,
    /// The client's answer included it: forward.
    Live,
}

/// What the room should do next on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferPlan {
    /// Draw new ICE credentials in this offer.
    pub ice_restart: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("no offer is waiting for an answer")]
    NoOffer,
}

/// One subscriber connection's negotiation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Negotiation {
    /// An offer is out and not yet answered.
    in_flight: bool,
    /// Something changed that the client's SDP does not have yet.
    due: bool,
    /// The next offer restarts ICE.
    restart_ice: bool,
}

impl Negotiation {
    /// Tracks were added or removed: an offer is due.
    pub fn changed(&mut self) {
        self.due = true;
    }

    /// The client asked for new ICE credentials: an offer that restarts ICE is due.
    pub fn restart_ice(&mut self) {
        self.restart_ice = true;
        self.due = true;
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Whether an offer should go out now; the room calls this once at the end of its
    /// turn, so that everything changed in one turn goes in one offer.
    pub fn poll_offer(&self) -> Option<OfferPlan> {
        (self.due && !self.in_flight).then_some(OfferPlan {
            ice_restart: self.restart_ice,
        })
    }

    /// The offer planned by [`Self::poll_offer`] went out, carrying every pending track.
    pub fn offer_sent<'a>(&mut self, tracks: impl IntoIterator<Item = &'a mut TrackPhase>) {
        self.in_flight = true;
        self.due = false;
        self.restart_ice = false;
        for phase in tracks {
            if *phase == TrackPhase::Pending {
                *phase = TrackPhase::Offered;
            }
        }
    }

    /// The offer could not be made: try again at the next change.
    pub fn offer_failed(&mut self) {
        self.due = false;
    }

    /// The client's answer was applied: what it carried is live.
    pub fn answered<'a>(
        &mut self,
        tracks: impl IntoIterator<Item = &'a mut TrackPhase>,
    ) -> Result<(), AnswerError> {
        if !self.in_flight {
            return Err(AnswerError::NoOffer);
        }
        self.in_flight = false;
        for phase in tracks {
            if *phase == TrackPhase::Offered {
                *phase = TrackPhase::Live;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TrackPhase::*;

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Change,
        Restart,
        Send,
        Answer,
        AddTrack,
    }

    /// Runs steps on a connection; after each, checks (offer due?, restart?, phases).
    fn run(steps: &[(Step, Option<bool>, &[TrackPhase])]) {
        let mut n = Negotiation::default();
        let mut phases: Vec<TrackPhase> = Vec::new();
        for (i, (step, want_offer, want_phases)) in steps.iter().enumerate() {
            match step {
                Step::Change => n.changed(),
                Step::Restart => n.restart_ice(),
                Step::AddTrack => {
                    phases.push(Pending);
                    n.changed();
                }
                Step::Send => {
                    assert!(n.poll_offer().is_some(), "step {i}: nothing to send");
                    n.offer_sent(phases.iter_mut());
                }
                Step::Answer => n.answered(phases.iter_mut()).unwrap(),
            }
            let plan = n.poll_offer();
            assert_eq!(
                plan.map(|p| p.ice_restart),
                *want_offer,
                "step {i} {step:?}"
            );
            assert_eq!(&phases[..], *want_phases, "step {i} {step:?}");
        }
    }

    #[test]
    fn one_offer_in_flight_and_a_queued_reoffer() {
        run(&[
            (Step::AddTrack, Some(false), &[Pending]),
            (Step::AddTrack, Some(false), &[Pending, Pending]),
            (Step::Send, None, &[Offered, Offered]),
            // A third participant publishes while the offer is out: queued.
            (Step::AddTrack, None, &[Offered, Offered, Pending]),
            (Step::Answer, Some(false), &[Live, Live, Pending]),
            (Step::Send, None, &[Live, Live, Offered]),
            (Step::Answer, None, &[Live, Live, Live]),
        ]);
    }

    #[test]
    fn ice_restart_rides_the_next_offer_once() {
        run(&[
            (Step::AddTrack, Some(false), &[Pending]),
            (Step::Send, None, &[Offered]),
            (Step::Restart, None, &[Offered]),
            (Step::Answer, Some(true), &[Live]),
            (Step::Send, None, &[Live]),
            (Step::Answer, None, &[Live]),
            (Step::Change, Some(false), &[Live]),
        ]);
    }

    #[test]
    fn an_answer_without_an_offer_is_refused() {
        let mut n = Negotiation::default();
        assert_eq!(n.answered([]), Err(AnswerError::NoOffer));
        n.changed();
        n.offer_sent([]);
        assert_eq!(n.answered([]), Ok(()));
        assert_eq!(n.answered([]), Err(AnswerError::NoOffer));
    }
}
