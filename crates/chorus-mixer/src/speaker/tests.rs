//! The speaker detector's tests: scripted phases of levels per source checked against
//! the expected active set, its order and the changes reported.

use super::track::PACKET_DURATION;
use super::*;

/// A stretch of time during which each listed source sends one packet per 20 ms
/// with the given level (`None`: sends nothing); unlisted sources send nothing.
struct Phase {
    ms: u64,
    levels: &'static [(u64, Option<u8>)],
    muted: &'static [u64],
}

const fn phase(ms: u64, levels: &'static [(u64, Option<u8>)]) -> Phase {
    Phase {
        ms,
        levels,
        muted: &[],
    }
}

struct Outcome {
    /// The final selection, in the order the speakers became active.
    active: Vec<u64>,
    /// How many changes were reported.
    changes: usize,
    /// Every reported selection, in order.
    reports: Vec<Vec<u64>>,
    /// Every source selected at some point.
    ever: std::collections::BTreeSet<u64>,
}

/// Runs the phases on a simulated clock, polling every 20 ms.
fn run(phases: &[Phase]) -> Outcome {
    let t0 = Instant::now();
    let mut d = SpeakerDetector::new(SpeakerConfig::default());
    for id in 1..=6 {
        d.add(SourceId(id));
    }
    let mut now = t0;
    let mut changes = 0;
    let mut reports: Vec<Vec<u64>> = Vec::new();
    let mut ever = std::collections::BTreeSet::new();
    for p in phases {
        for id in 1..=6 {
            d.set_muted(SourceId(id), p.muted.contains(&id));
        }
        for _ in 0..p.ms / 20 {
            for &(id, level) in p.levels {
                if let Some(level) = level {
                    d.observe(SourceId(id), Some(level), now);
                }
            }
            if let Some(set) = d.poll_change(now) {
                changes += 1;
                ever.extend(set.iter().map(|s| s.id.0));
                let ids: Vec<u64> = set.iter().map(|s| s.id.0).collect();
                // A report is a change of the set, never the same set reordered.
                if let Some(last) = reports.last() {
                    let mut a = last.clone();
                    let mut b = ids.clone();
                    a.sort_unstable();
                    b.sort_unstable();
                    assert_ne!(a, b, "the same set re-reported: {last:?} then {ids:?}");
                }
                reports.push(ids);
            }
            now += PACKET_DURATION;
        }
    }
    Outcome {
        active: d.active().iter().map(|s| s.0).collect(),
        changes,
        reports,
        ever,
    }
}

#[test]
fn selection_scenarios() {
    // (name, phases, expected final selection in order, never selected)
    type Case = (&'static str, Vec<Phase>, Vec<u64>, &'static [u64]);
    let cases: Vec<Case> = vec![
        (
            "the loudest three of five; starting together, loudest first",
            vec![phase(
                1000,
                &[
                    (1, Some(50)),
                    (2, Some(20)),
                    (3, Some(40)),
                    (4, Some(30)),
                    (5, Some(60)),
                ],
            )],
            vec![2, 4, 3],
            &[1, 5],
        ),
        (
            "the loudest three of six, whatever their ids; loudest first",
            vec![phase(
                1000,
                &[
                    (1, Some(40)),
                    (2, Some(35)),
                    (3, Some(30)),
                    (4, Some(25)),
                    (5, Some(20)),
                    (6, Some(15)),
                ],
            )],
            vec![6, 5, 4],
            &[1, 2, 3],
        ),
        (
            "a briefly louder challenger does not displace",
            vec![
                phase(
                    1000,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                ),
                phase(
                    160,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(5))],
                ),
                phase(
                    1000,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                ),
            ],
            vec![1, 2, 3],
            &[4],
        ),
        (
            "a sustained challenger displaces the quietest",
            vec![
                phase(
                    1000,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                ),
                phase(
                    1000,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(5))],
                ),
            ],
            // It joins at the end, however loud.
            vec![1, 2, 4],
            &[],
        ),
        (
            "a challenger less than the margin louder never displaces",
            vec![
                phase(
                    1000,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                ),
                phase(
                    2000,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(46))],
                ),
            ],
            vec![1, 2, 3],
            &[4],
        ),
        (
            "silence drops a talker out and frees its slot",
            vec![
                phase(
                    1000,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(30)), (4, Some(60))],
                ),
                phase(
                    1000,
                    &[(1, Some(127)), (2, Some(30)), (3, Some(30)), (4, Some(60))],
                ),
            ],
            vec![2, 3, 4],
            &[],
        ),
        (
            "a short pause between words keeps the slot",
            vec![
                phase(1000, &[(1, Some(30)), (2, Some(40))]),
                phase(200, &[(1, Some(127)), (2, Some(40))]),
            ],
            // The slot and the place stay.
            vec![1, 2],
            &[],
        ),
        (
            "no packets for a while drops a talker out",
            vec![
                phase(1000, &[(1, Some(30)), (2, Some(40))]),
                phase(600, &[(1, None), (2, Some(40))]),
            ],
            vec![2],
            &[],
        ),
        (
            "levels at the silence threshold are not talking",
            vec![phase(
                1000,
                &[(1, Some(100)), (2, Some(110)), (3, Some(99))],
            )],
            vec![3],
            &[1, 2],
        ),
        (
            "muted is never selected, however loud",
            vec![Phase {
                ms: 1000,
                levels: &[(1, Some(0)), (2, Some(30)), (3, Some(30)), (4, Some(30))],
                muted: &[1],
            }],
            vec![2, 3, 4],
            &[1],
        ),
        (
            "muting a selected talker drops it out",
            vec![
                phase(1000, &[(1, Some(10)), (2, Some(30))]),
                Phase {
                    ms: 40,
                    levels: &[(1, Some(10)), (2, Some(30))],
                    muted: &[1],
                },
            ],
            vec![2],
            &[],
        ),
    ];
    for (name, phases, want, never) in cases {
        let out = run(&phases);
        assert_eq!(out.active, want, "{name}");
        for id in never {
            assert!(!out.ever.contains(id), "{name}: {id} was selected");
        }
    }
}

/// Phases in which sources 1 and 2 talk at the same average level, taking turns
/// to be 30 dB louder every 200 ms (syllables): the smoothed loudness of each
/// overtakes the other's by more than the switch margin five times a second.
fn alternating_syllables(seconds: u64) -> Vec<Phase> {
    let mut phases = Vec::new();
    for _ in 0..seconds * 5 / 2 {
        phases.push(phase(200, &[(1, Some(15)), (2, Some(45))]));
        phases.push(phase(200, &[(1, Some(45)), (2, Some(15))]));
    }
    phases
}

#[test]
fn reported_only_when_the_set_changes_in_the_order_of_becoming_active() {
    // (name, phases, every report in turn)
    type Case = (&'static str, Vec<Phase>, Vec<Vec<u64>>);
    let cases: Vec<Case> = vec![
        (
            "near-equal talkers alternating syllables: once, the first to talk first",
            [phase(200, &[(1, Some(30))])]
                .into_iter()
                .chain(alternating_syllables(6))
                .collect(),
            vec![vec![1], vec![1, 2]],
        ),
        (
            "near-equal talkers starting together: once, the louder at the start first",
            alternating_syllables(6),
            vec![vec![1, 2]],
        ),
        (
            "a later talker who is much louder keeps its place",
            vec![
                phase(400, &[(1, Some(40))]),
                phase(3000, &[(1, Some(40)), (2, Some(10))]),
            ],
            vec![vec![1], vec![1, 2]],
        ),
        (
            "the one who stops leaves, the others keep their order, a returner goes last",
            vec![
                phase(300, &[(1, Some(30))]),
                phase(300, &[(1, Some(30)), (2, Some(30))]),
                phase(300, &[(1, Some(30)), (2, Some(30)), (3, Some(30))]),
                phase(1000, &[(1, Some(30)), (2, Some(127)), (3, Some(30))]),
                phase(600, &[(1, Some(30)), (2, Some(30)), (3, Some(30))]),
            ],
            vec![
                vec![1],
                vec![1, 2],
                vec![1, 2, 3],
                vec![1, 3],
                vec![1, 3, 2],
            ],
        ),
        (
            "a challenger who displaces the quietest joins at the end",
            vec![
                phase(
                    1000,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                ),
                phase(
                    2000,
                    &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(5))],
                ),
            ],
            vec![vec![1, 2, 3], vec![1, 2, 4]],
        ),
        (
            "everyone falls silent: one empty report",
            vec![
                phase(500, &[(1, Some(30)), (2, Some(30))]),
                phase(1500, &[(1, Some(127)), (2, Some(127))]),
            ],
            vec![vec![1, 2], vec![]],
        ),
    ];
    for (name, phases, want) in cases {
        let out = run(&phases);
        assert_eq!(out.reports, want, "{name}");
        assert_eq!(out.changes, want.len(), "{name}");
    }
}

#[test]
fn order_does_not_flap_between_similar_talkers() {
    // Source 2 wobbles 2 dB around source 1 every 40 ms: one report, no flapping.
    let mut phases = vec![phase(500, &[(1, Some(30)), (2, Some(30))])];
    for _ in 0..25 {
        phases.push(phase(40, &[(1, Some(30)), (2, Some(28))]));
        phases.push(phase(40, &[(1, Some(30)), (2, Some(32))]));
    }
    let out = run(&phases);
    assert_eq!(out.active, vec![1, 2]);
    assert_eq!(out.changes, 1);
}

#[test]
fn changes_are_reported_once_with_loudness() {
    let t0 = Instant::now();
    let mut d = SpeakerDetector::new(SpeakerConfig::default());
    d.add(SourceId(7));
    assert_eq!(d.poll_change(t0), None, "nobody talks: no change");
    assert!(!d.observe(SourceId(8), Some(10), t0), "unknown source");
    let mut now = t0;
    let mut reports = Vec::new();
    for _ in 0..150 {
        d.observe(SourceId(7), Some(27), now);
        if let Some(r) = d.poll_change(now) {
            reports.push(r);
        }
        now += PACKET_DURATION;
    }
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].len(), 1);
    assert_eq!(reports[0][0].id, SourceId(7));
    // Rank converges on 127 - 27 = 100 dB above silence.
    let loudness = d.loudness(SourceId(7)).unwrap();
    assert!((loudness - 100.0 / 127.0).abs() < 0.02, "{loudness}");

    d.remove(SourceId(7));
    assert_eq!(d.poll_change(now), Some(vec![]), "removal is a change");
    assert_eq!(d.poll_change(now), None);
}
