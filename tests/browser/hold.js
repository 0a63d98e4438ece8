#!/usr/bin/env node
// Browser test of hold on the demo page: two headless Chromium pages (Alice, Bob) join one
// room through the form and see each other's camera play. Alice presses "Hold": Bob sees
// her state `on_hold`, and neither video plays on either side (the server forwards
// nothing to or from her) for 11 s, longer than the server's silence timeout, without
// her connections being found silent; nothing is renegotiated. She presses "Resume": both videos
// play again (from a keyframe), still without a new offer, and she is `connected`.
//
//   CHORUS_URL    server base URL (default http://127.0.0.1:7880)
//   CHROMIUM      browser binary (default /usr/bin/chromium)
//   E2E_ARTIFACTS directory for screenshots and logs on failure (default: a new temp dir)
//
// Run inside a private network namespace (scripts/browser-test.sh hold does that).
'use strict';

const { sleep, fail, until, snapshot, cameraFrames, cameraPlays, failOnPageErrors, demoTest } = require('./lib');

const WHOLE_TEST_MS = 90_000;
const t = demoTest('hold');
const { info } = t;

const offers = async (p) => (await snapshot(p)).eventTypes.filter((e) => e === 'offer').length;

async function main() {
  await t.launch();
  const room = `hold-${Date.now().toString(36)}`;
  const alice = await t.join('Alice', room);
  const bob = await t.join('Bob', room);
  await cameraPlays(bob, alice, "Bob sees Alice's camera");
  await cameraPlays(alice, bob, "Alice sees Bob's camera");
  info('both cameras play');
  const offersBefore = [await offers(alice), await offers(bob)];

  await alice.page.click('[data-testid="hold-button"]');
  await until('Bob sees Alice on hold', 10_000, async () => {
    const s = await snapshot(bob);
    const a = s.roster.find((p) => p.participant_id === alice.participantId);
    return a && a.state === 'on_hold';
  });
  if (!(await snapshot(alice)).held) fail('the page does not show Alice held');
  // What was on its way drains; then nothing plays either way.
  await sleep(500);
  const held = [await cameraFrames(bob, alice), await cameraFrames(alice, bob)];
  await sleep(2000);
  const still = [await cameraFrames(bob, alice), await cameraFrames(alice, bob)];
  if (still[0] > held[0] + 1) fail(`Bob kept seeing held Alice: ${held[0]} → ${still[0]} frames`);
  if (still[1] > held[1] + 1) fail(`held Alice kept seeing Bob: ${held[1]} → ${still[1]} frames`);
  info(`on hold: no video either way (${held} → ${still} frames)`);
  // Held past the server's silence timeout (10 s): her connections stay alive on the
  // browser's consent checks and RTCP, and the server never finds them silent.
  await sleep(9000);
  const sAlice = await snapshot(alice);
  if (sAlice.pub.connection !== 'connected' || sAlice.sub.connection !== 'connected') {
    fail(`Alice's connections did not stay up: ${JSON.stringify([sAlice.pub, sAlice.sub])}`);
  }
  if (sAlice.eventTypes.includes('ice_restart')) fail('the server found held Alice silent (ice_restart)');
  if (sAlice.state !== 'joined') fail(`Alice is out: ${sAlice.state} (${sAlice.leftReason})`);

  await alice.page.click('[data-testid="hold-button"]');
  await until('Bob sees Alice connected again', 10_000, async () => {
    const s = await snapshot(bob);
    const a = s.roster.find((p) => p.participant_id === alice.participantId);
    return a && a.state === 'connected';
  });
  await cameraPlays(bob, alice, "Bob sees Alice's camera again");
  await cameraPlays(alice, bob, "Alice sees Bob's camera again");
  const offersAfter = [await offers(alice), await offers(bob)];
  if (offersAfter.join() !== offersBefore.join()) fail(`hold renegotiated: offers ${offersBefore} → ${offersAfter}`);
  info('resumed both ways, no renegotiation');

  failOnPageErrors(t.pages);
}

t.run({ main, limitMs: WHOLE_TEST_MS });
