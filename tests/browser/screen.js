#!/usr/bin/env node
// Browser test of screen share and last-N on the demo page: two headless Chromium pages
// (Alice, Bob) join one room through the form. Alice presses "Share screen"
// (getDisplayMedia, Chromium's fake capture); Bob's tile of Alice goes large and decodes
// her screen. Bob then asks for no camera (last-N 0): Alice's camera tile shows paused
// while her screen keeps decoding (screen shares are outside N); last-N 6 resumes it.
// Alice stops sharing and Bob's tile goes back to normal.
//
//   CHORUS_URL    server base URL (default http://127.0.0.1:7880)
//   CHROMIUM      browser binary (default /usr/bin/chromium)
//   E2E_ARTIFACTS directory for screenshots and logs on failure (default: a new temp dir)
//
// Run inside a private network namespace (scripts/browser-test.sh screen does that).
'use strict';

const { chromium } = require('playwright-core');
const { sleep, fail, until, runTest, demoPageServed, launchChromium, closeChromium, joinThroughForm, saveArtifacts } = require('./lib');

const BASE = (process.env.CHORUS_URL || 'http://127.0.0.1:7880').replace(/\/+$/, '');
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const WHOLE_TEST_MS = 90_000;

const t0 = Date.now();
const pages = []; // { name, page, console: [], participantId }
let context = null;
let userDataDir = null;

function info(...a) {
  console.log(`[screen ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
}

const snap = (p) => p.page.evaluate(() => window.chorus && window.chorus.snapshot());

/** What `viewer` shows of `owner`'s tile: classes, paused flag, and its videos' progress. */
function tileOf(viewer, owner) {
  return viewer.page.evaluate((pid) => {
    const tile = document.querySelector(`.tile.remote[data-participant-id="${pid}"]`);
    if (!tile) return null;
    const video = (cls) => {
      const v = tile.querySelector(`video.${cls}`);
      // Frames shown: a stalled stream's currentTime runs on, this count does not.
      return v ? { width: v.videoWidth, frames: v.getVideoPlaybackQuality().totalVideoFrames } : null;
    };
    return {
      large: tile.classList.contains('has-screen'),
      spans: getComputedStyle(tile).gridColumnStart === '1',
      paused: tile.dataset.videoPaused === 'true',
      badge: tile.querySelector('[data-testid="video-paused"]').textContent,
      screen: video('screen'),
      camera: video('camera'),
    };
  }, owner.participantId);
}

/** Waits until `viewer`'s video of class `cls` in `owner`'s tile plays on (decodes). */
async function decoding(viewer, owner, cls, what) {
  const first = await until(`${what}: a ${cls} video with a size`, 15_000, async () => {
    const t = await tileOf(viewer, owner);
    return t && t[cls] && t[cls].width > 0 ? t : null;
  });
  await until(`${what}: the ${cls} video plays on`, 10_000, async () => {
    const t = await tileOf(viewer, owner);
    return t && t[cls] && t[cls].frames >= first[cls].frames + 5;
  });
}

async function main() {
  await demoPageServed(BASE);
  ({ context, userDataDir } = await launchChromium(chromium, { exe: EXE, prefix: 'chorus-screen-profile-', viewport: { width: 1000, height: 700 } }));
  const room = `screen-${Date.now().toString(36)}`;
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
  await decoding(bob, alice, 'camera', "Bob sees Alice's camera");
  info("Bob decodes Alice's camera");

  // Alice shares her screen: Bob's tile of her goes large and plays the screen.
  await alice.page.click('[data-testid="share-button"]');
  await until('Alice publishes a screen share', 15_000, async () => (await snap(alice)).sharingScreen);
  await until("Bob's tile of Alice goes large", 15_000, async () => {
    const t = await tileOf(bob, alice);
    return t && t.large && t.spans;
  });
  await decoding(bob, alice, 'screen', "Bob sees Alice's screen");
  const screen = await tileOf(bob, alice);
  info(`Bob decodes Alice's screen at ${screen.screen.width} px wide, her tile across the stage`);

  // Bob asks for no camera: Alice's is paused (and shown so), her screen still plays.
  await bob.page.evaluate(() => window.chorus.setLastN(0));
  await until("Bob's tile of Alice shows her camera paused", 10_000, async () => {
    const t = await tileOf(bob, alice);
    return t && t.paused && t.badge === 'paused';
  });
  await decoding(bob, alice, 'screen', 'the screen, outside last-N');
  const held = await tileOf(bob, alice);
  await sleep(1000);
  const still = await tileOf(bob, alice);
  if (still.camera && still.camera.frames > held.camera.frames + 1) {
    fail(`Alice's paused camera kept playing for Bob: ${held.camera.frames} → ${still.camera.frames} frames`);
  }
  info("Alice's camera paused for Bob; her screen plays on");

  await bob.page.evaluate(() => window.chorus.setLastN(6));
  await until("Alice's camera resumes for Bob", 10_000, async () => {
    const t = await tileOf(bob, alice);
    return t && !t.paused;
  });
  await decoding(bob, alice, 'camera', "Alice's camera again");
  info("Alice's camera resumed for Bob");

  // Alice stops sharing: Bob's tile of her is a normal tile again.
  await alice.page.click('[data-testid="share-button"]');
  await until("Bob's tile of Alice back to normal", 15_000, async () => {
    const t = await tileOf(bob, alice);
    return t && !t.large && !t.screen;
  });
  info('screen share stopped');

  for (const p of pages) {
    const errs = p.console.filter((l) => l.startsWith('PAGEERROR'));
    if (errs.length) fail(`${p.name}'s page threw: ${errs.join(' | ')}`);
  }
}

async function dumpArtifacts(err) {
  await saveArtifacts(err, { test: 'screen', pages, state: snap });
}

async function cleanup() {
  await closeChromium(context, userDataDir);
}

runTest({ main, limitMs: WHOLE_TEST_MS, info, dumpArtifacts, cleanup });
