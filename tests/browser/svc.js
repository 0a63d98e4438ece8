#!/usr/bin/env node
// Browser test of VP9 SVC through the demo page: Alice's Chromium page publishes its
// fake camera at 1280x720 as one VP9 stream in three spatial and three temporal layers
// (`?codec=vp9&svc=1`: scalabilityMode L3T3_KEY); Bob's page (`?simulcast=0`) receives
// it and resizes the <video> showing Alice (the page's ResizeObserver sends
// `track_settings`): large, small, large again. It checks
//
// - Alice's Chromium sends VP9 in L3T3_KEY (outbound-rtp `scalabilityMode`, codec);
// - the server lists Alice's camera with its spatial layers `s0`, `s1`, `s2`
//   (`GET /v1/rooms/{room}/participants`, `tracks[].layers`);
// - Bob receives VP9, and his received resolution (inbound-rtp frameWidth) follows the
//   tile: a small tile (160x90) gets the lowest spatial layer, a large one (1280x720)
//   the top one, at least three times as wide; Bob keeps decoding through every switch.
//
//   CHORUS_URL, CHROMIUM, E2E_ARTIFACTS as in simulcast.js. The helpers are layers.js's,
//   shared with av1.js.
//
// Exit code 0 on success, 1 on failure. Run inside a private network namespace with only
// loopback (scripts/browser-test.sh svc does that).
'use strict';

const { fail, until, failOnPageErrors, demoTest } = require('./lib');
const { SMALL, LARGE, sending, serverLayers, showAt, waitWidth } = require('./layers');

const t = demoTest('svc');
const { info } = t;

async function main() {
  await t.launch({ viewport: { width: 1400, height: 900 } });
  const room = `svc-${Date.now().toString(36)}`;
  const alice = await t.join('Alice', room, { query: '?codec=vp9&svc=1' });
  info(`Alice joined as ${alice.participantId}`);
  const bob = await t.join('Bob', room, { query: '?simulcast=0' });
  info(`Bob joined as ${bob.participantId}`);
  const trackId = await until('Alice publishes her camera', 15_000, () =>
    alice.page.evaluate(() => window.chorus.localTracks.camera && window.chorus.localTracks.camera.trackId));
  const caps = await alice.page.evaluate(() =>
    RTCRtpSender.getCapabilities('video').codecs.filter((c) => /vp9/i.test(c.mimeType))
      .map((c) => `${c.sdpFmtpLine || ''} [${(c.scalabilityModes || []).length} modes${(c.scalabilityModes || []).includes('L3T3_KEY') ? ', L3T3_KEY' : ''}]`));
  info(`Alice's VP9 send capabilities: ${caps.join('; ') || 'none'}`);
  let out = null;
  out = await until(() => `Alice sends VP9 in L3T3_KEY (outbound-rtp: ${JSON.stringify(out)})`, 20_000, async () => {
    out = await sending(alice);
    return out && /vp9/i.test(out.codec || '') && out.scalabilityMode === 'L3T3_KEY' ? out : null;
  }, 500);
  info(`Alice sends ${out.codec} ${out.scalabilityMode}`);
  await until(() => `Bob's page shows Alice's camera`, 20_000, () =>
    bob.page.evaluate((id) => !!document.querySelector(`video[data-track-id="${id}"]`), trackId));

  await showAt(bob, trackId, LARGE);
  let layers = null;
  await until(() => `the server lists Alice's camera in three spatial layers (got ${JSON.stringify(layers)})`, 30_000, async () => {
    layers = await serverLayers(room, trackId);
    return JSON.stringify(layers) === '["s0","s1","s2"]';
  }, 500);
  info(`server: layers ${layers.join(', ')}`);
  const large = await waitWidth(bob, alice, 'a 1280x720 tile gets more than the lowest layer', 30_000, (w) => w > 400);
  info(`large tile: Bob receives ${large.frameWidth}x${large.frameHeight} in ${large.codec}`);
  if (!/vp9/i.test(large.codec || '')) fail(`Bob receives Alice's camera in ${large.codec}, not VP9`);

  await showAt(bob, trackId, SMALL);
  const small = await waitWidth(bob, alice, 'a 160x90 tile gets the lowest spatial layer', 15_000, (w) => w * 3 <= large.frameWidth && w <= 400);
  info(`small tile: Bob receives ${small.frameWidth}x${small.frameHeight}`);

  await showAt(bob, trackId, LARGE);
  const again = await waitWidth(bob, alice, 'the large tile gets the top layer again', 30_000, (w) => w >= 3 * small.frameWidth);
  info(`large tile again: Bob receives ${again.frameWidth}x${again.frameHeight}`);

  const errors = await bob.page.evaluate(() => window.chorus.events.filter((m) => m.type === 'error').map((m) => m.code));
  if (errors.length) fail(`Bob's page got errors from the server: ${errors.join(', ')}`);
  failOnPageErrors(t.pages);
}

t.run({ main, limitMs: 100_000 });
