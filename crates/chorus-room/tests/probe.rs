//! Bandwidth probes on the simulated room: a subscriber whose allocation wants more
//! than its estimate shows room for gets padding-only probe clusters on the SSRC of the
//! video it receives, numbered into that video's sequence; what gets through raises
//! its estimate sooner than the media alone would. Its client takes them as padding:
//! media and padding together are one unbroken sequence, nothing is reported lost.

use std::time::Instant;

use chorus_room::sim::{ClientId, Dir, Sim, ms, seq_jumps};

/// bob receives alice's simulcast camera; loss toward him drives his estimate to the
/// floor and him to the low layer; then the loss stops. Returns his estimate every
/// 500 ms after that, and the sim.
fn recovery(probing: bool) -> (Vec<u64>, Sim, ClientId, String, (Instant, Instant)) {
    let mut sim = Sim::new(41);
    sim.set_probing(probing);
    let alice = sim.join_simulcast("alice");
    let bob = sim.join("bob");
    let video = sim.publish_simulcast(alice);
    sim.run_for(ms(4000));
    sim.set_loss(bob, Dir::Down, 0.3);
    // Two seconds in, the loss shows: the link is congested from then on.
    sim.run_for(ms(2000));
    let congested = sim.now();
    sim.run_for(ms(6000));
    let lifted = sim.now();
    sim.set_loss(bob, Dir::Down, 0.0);
    let trace = (0..24)
        .map(|_| {
            sim.run_for(ms(500));
            sim.subscriber_stats(bob)
                .expect("an estimate")
                .estimated_bitrate_bps
        })
        .collect();
    (trace, sim, bob, video, (congested, lifted))
}

#[test]
fn probes_raise_the_estimate_sooner_and_the_client_takes_them_as_padding() {
    let (without, mut plain, pbob, _, _) = recovery(false);
    let (with, mut sim, bob, video, (congested, lifted)) = recovery(true);
    eprintln!("without probes: {without:?}");
    eprintln!("with probes:    {with:?}");
    let s = sim.subscriber_stats(bob).expect("an estimate");
    eprintln!("{s:?}");
    assert_eq!(
        plain
            .subscriber_stats(pbob)
            .expect("an estimate")
            .probes_sent,
        0
    );
    // Each step up waited for a probe that got through at its rate.
    assert!(s.probes_sent > 0 && s.probes_delivered > 0, "{s:?}");
    assert!(s.step_probes_succeeded > 0, "{s:?}");
    // Sooner: the half-seconds until the estimate first reaches 350 kbit/s, above
    // what the top layer takes (about 300 kbit/s): from there nothing more is probed.
    let reach = |t: &[u64]| t.iter().position(|&bps| bps >= 350_000);
    let (slow, fast) = (reach(&without), reach(&with));
    assert!(
        fast.is_some_and(|f| slow.is_none_or(|s| f < s)),
        "{fast:?} vs {slow:?}"
    );

    // The padding went on bob's copy of alice's camera, numbered into it.
    let padding = sim.padding(bob, &video).to_vec();
    assert!(!padding.is_empty());
    // Clusters (arrivals less than 100 ms apart): each of 40 packets over a few
    // hundred milliseconds at most, at most one a second, none while the link is
    // congested.
    let mut clusters: Vec<Vec<Instant>> = Vec::new();
    for p in &padding {
        match clusters.last_mut() {
            Some(c) if p.at - *c.last().expect("one") < ms(100) => c.push(p.at),
            _ => clusters.push(vec![p.at]),
        }
    }
    eprintln!(
        "clusters: {:?}",
        clusters
            .iter()
            .map(|c| (c[0] - congested, c.len()))
            .collect::<Vec<_>>()
    );
    assert!(clusters.len() as u64 >= s.probes_delivered);
    for c in &clusters {
        assert!(c.len() == 40 && c[c.len() - 1] - c[0] <= ms(500), "{c:?}");
        assert!(c[0] < congested || c[0] > lifted, "probed under loss");
    }
    for pair in clusters.windows(2) {
        assert!(pair[1][0] - pair[0][0] >= ms(1000), "{pair:?}");
    }
    let media = sim.rtp(bob, &video);
    let ssrc = media.last().expect("media").ssrc;
    assert!(padding.iter().all(|p| p.ssrc == ssrc));
    // No media packet gave its number up (a receiver would drop one of two packets
    // under one number): the pictures from the first padding on follow each other.
    let first = padding[0].at;
    let pictures: Vec<u16> = media
        .iter()
        .filter(|p| p.at >= first)
        .map(|p| p.picture_id.expect("VP8 picture id"))
        .collect();
    assert!(pictures.len() > 100);
    let skipped: Vec<_> = pictures
        .windows(2)
        .filter(|w| !matches!(w[1].wrapping_sub(w[0]) & 0x7fff, 0 | 1))
        .collect();
    assert_eq!(skipped, [] as [&[u16]; 0]);
    // Media and padding in sequence order: one sequence without a hole or a repeat
    // from the first padding on (the loss phase left real holes before).
    let mut all = sim.numbered(bob, &video);
    let base = all[0].seq;
    all.sort_by_key(|p| p.seq.wrapping_sub(base));
    let from = all
        .iter()
        .position(|p| p.seq == padding[0].seq)
        .expect("first padding");
    assert_eq!(seq_jumps(&all[from..]), []);
    // … and none of it reported lost.
    assert_eq!(s.loss_percent, 0.0, "{s:?}");
}
