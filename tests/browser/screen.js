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

const { sleep, until, snapshot, fail, failOnPageErrors, demoTest } = require('./lib');

const WHOLE_TEST_MS = 90_000;
const t = demoTest('screen');
const { info } = t;

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
  await t.launch();
  const room = `screen-${Date.now().toString(36)}`;
  const alice = await t.join('Alice', room);
  const bob = await t.join('Bob', room);
  await decoding(bob, alice, 'camera', "Bob sees Alice's camera");
  info("Bob decodes Alice's camera");

  // Alice shares her screen: Bob's tile of her goes large and plays the screen.
  await alice.page.click('[data-testid="share-button"]');
  await until('Alice publishes a screen share', 15_000, async () => (await snapshot(alice)).sharingScreen);
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

  failOnPageErrors(t.pages);
}

t.run({ main, limitMs: WHOLE_TEST_MS });
