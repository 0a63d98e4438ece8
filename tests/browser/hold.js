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

const { chromium } = require('playwright-core');
const { sleep, fail, until, runTest, demoPageServed, launchChromium, closeChromium, saveArtifacts } = require('./lib');

const BASE = (process.env.CHORUS_URL || 'http://127.0.0.1:7880').replace(/\/+$/, '');
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const WHOLE_TEST_MS = 90_000;

const t0 = Date.now();
const pages = []; // { name, page, console: [], participantId }
let context = null;
let userDataDir = null;

function info(...a) {
  console.log(`[hold ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
}

const snap = (p) => p.page.evaluate(() => window.chorus && window.chorus.snapshot());

/** Frames `viewer` has shown of `owner`'s camera (null: no such video yet). */
function framesOf(viewer, owner) {
  return viewer.page.evaluate((pid) => {
    const tile = document.querySelector(`.tile.remote[data-participant-id="${pid}"]`);
    const v = tile && tile.querySelector('video.camera');
    // Frames shown: a stalled stream's currentTime runs on, this count does not.
    return v && v.videoWidth > 0 ? v.getVideoPlaybackQuality().totalVideoFrames : null;
  }, owner.participantId);
}

/** Waits until `viewer` shows `owner`'s camera playing on. */
async function playing(viewer, owner, what) {
  const first = await until(`${what}: a camera video with a size`, 15_000, async () => framesOf(viewer, owner));
  await until(`${what}: it plays on`, 10_000, async () => (await framesOf(viewer, owner)) >= first + 5);
}

const offers = async (p) => (await snap(p)).eventTypes.filter((t) => t === 'offer').length;

async function main() {
  await demoPageServed(BASE);
  ({ context, userDataDir } = await launchChromium(chromium, { exe: EXE, prefix: 'chorus-hold-profile-', viewport: { width: 1000, height: 700 } }));
  const room = `hold-${Date.now().toString(36)}`;
  for (const name of ['Alice', 'Bob']) {
    const page = pages.length === 0 && context.pages()[0] ? context.pages()[0] : await context.newPage();
    const p = { name, page, console: [], participantId: null };
    page.on('console', (m) => p.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => p.console.push(`PAGEERROR: ${e.message}`));
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    await page.fill('#room', room);
    await page.fill('#name', name);
    await page.click('#join');
    const s = await until(`${name} joins`, 20_000, async () => {
      const s = await snap(p);
      if (s && (s.state === 'failed' || s.errors.length)) fail(`${name} could not join: ${s.errors.join(' | ')}`);
      return s && s.state === 'joined' && s.participantId ? s : null;
    });
    p.participantId = s.participantId;
    pages.push(p);
  }
  const [alice, bob] = pages;
  await playing(bob, alice, "Bob sees Alice's camera");
  await playing(alice, bob, "Alice sees Bob's camera");
  info('both cameras play');
  const offersBefore = [await offers(alice), await offers(bob)];

  await alice.page.click('[data-testid="hold-button"]');
  await until('Bob sees Alice on hold', 10_000, async () => {
    const s = await snap(bob);
    const a = s.roster.find((p) => p.participant_id === alice.participantId);
    return a && a.state === 'on_hold';
  });
  if (!(await snap(alice)).held) fail('the page does not show Alice held');
  // What was on its way drains; then nothing plays either way.
  await sleep(500);
  const held = [await framesOf(bob, alice), await framesOf(alice, bob)];
  await sleep(2000);
  const still = [await framesOf(bob, alice), await framesOf(alice, bob)];
  if (still[0] > held[0] + 1) fail(`Bob kept seeing held Alice: ${held[0]} → ${still[0]} frames`);
  if (still[1] > held[1] + 1) fail(`held Alice kept seeing Bob: ${held[1]} → ${still[1]} frames`);
  info(`on hold: no video either way (${held} → ${still} frames)`);
  // Held past the server's silence timeout (10 s): her connections stay alive on the
  // browser's consent checks and RTCP, and the server never finds them silent.
  await sleep(9000);
  const sAlice = await snap(alice);
  if (sAlice.pub.connection !== 'connected' || sAlice.sub.connection !== 'connected') {
    fail(`Alice's connections did not stay up: ${JSON.stringify([sAlice.pub, sAlice.sub])}`);
  }
  if (sAlice.eventTypes.includes('ice_restart')) fail('the server found held Alice silent (ice_restart)');
  if (sAlice.state !== 'joined') fail(`Alice is out: ${sAlice.state} (${sAlice.leftReason})`);

  await alice.page.click('[data-testid="hold-button"]');
  await until('Bob sees Alice connected again', 10_000, async () => {
    const s = await snap(bob);
    const a = s.roster.find((p) => p.participant_id === alice.participantId);
    return a && a.state === 'connected';
  });
  await playing(bob, alice, "Bob sees Alice's camera again");
  await playing(alice, bob, "Alice sees Bob's camera again");
  const offersAfter = [await offers(alice), await offers(bob)];
  if (offersAfter.join() !== offersBefore.join()) fail(`hold renegotiated: offers ${offersBefore} → ${offersAfter}`);
  info('resumed both ways, no renegotiation');

  for (const p of pages) {
    const errs = p.console.filter((l) => l.startsWith('PAGEERROR'));
    if (errs.length) fail(`${p.name}'s page threw: ${errs.join(' | ')}`);
  }
}

async function dumpArtifacts(err) {
  await saveArtifacts(err, { test: 'hold', pages, state: snap });
}

async function cleanup() {
  await closeChromium(context, userDataDir);
}

runTest({ main, limitMs: WHOLE_TEST_MS, info, dumpArtifacts, cleanup });
