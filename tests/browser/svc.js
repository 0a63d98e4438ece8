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
//   the top one, at least three times as wide; Bob keeps decoding through every switch;
// - dynacast's hint is applied: with Bob's tile small, the server tells Alice only `s0`
//   is needed (`publisher_layers`) and her page sends L1T3 at a quarter of the size
//   (her sender's getParameters().encodings[0], outbound-rtp frameWidth <= 320); the
//   server then lists one layer (`s0`); with the tile large again she is back to
//   L3T3_KEY and Bob receives 1280 wide;
// - the page's table of hint -> settings (publish.js svcSettings).
//
//   CHORUS_URL, CHROMIUM, E2E_ARTIFACTS as in simulcast.js. The helpers are layers.js's,
//   shared with av1.js.
//
// Exit code 0 on success, 1 on failure. Run inside a private network namespace with only
// loopback (scripts/browser-test.sh svc does that).
'use strict';

const { fail, until, failOnPageErrors, demoTest } = require('./lib');
const { SMALL, LARGE, sending, serverLayers, showAt, waitSending, waitWidth } = require('./layers');

const t = demoTest('svc');
const { info } = t;

// publisher_layers' active flags -> what the page sets (publish.js svcSettings).
const SVC_TABLE = [
  { active: [true, true, true], want: { scalabilityMode: 'L3T3_KEY', scaleResolutionDownBy: 1 } },
  { active: [true, true, false], want: { scalabilityMode: 'L2T3_KEY', scaleResolutionDownBy: 2 } },
  { active: [true, false, false], want: { scalabilityMode: 'L1T3', scaleResolutionDownBy: 4 } },
  { active: [false, false, false], want: { scalabilityMode: 'L1T3', scaleResolutionDownBy: 4 } },
  { active: [true, true], want: { scalabilityMode: 'L3T3_KEY', scaleResolutionDownBy: 1 } },
  // Two named (the stream's encoder had dropped its top layer): the lowest is still a quarter.
  { active: [true, false], want: { scalabilityMode: 'L1T3', scaleResolutionDownBy: 4 } },
];

async function checkSvcTable(page) {
  const got = await page.evaluate(async (table) => {
    const { svcSettings } = await import('/publish.js');
    return table.map((row) => svcSettings(row.active.map((active, i) => ({ rid: `s${i}`, active }))));
  }, SVC_TABLE);
  SVC_TABLE.forEach((row, i) => {
    if (JSON.stringify(got[i]) !== JSON.stringify(row.want)) {
      fail(`svcSettings(${JSON.stringify(row.active)}) = ${JSON.stringify(got[i])}, want ${JSON.stringify(row.want)}`);
    }
  });
}

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
  // Dynacast turns s1 and s2 off 3 s after nobody needs them; the page then sends one
  // layer at a quarter of the size.
  const t0 = Date.now();
  const one = await waitSending(alice, 'L1T3', 'with only a small tile, Alice sends L1T3 at most 320 wide', 15_000, (w) => w > 0 && w <= 320);
  info(`small tile: Alice sends ${one.scalabilityMode} ${one.frameWidth} wide (scaled down by ${one.scale}) after ${Date.now() - t0} ms`);
  await until(() => `the server lists Alice's camera in one spatial layer (got ${JSON.stringify(layers)})`, 10_000, async () => {
    layers = await serverLayers(room, trackId);
    return JSON.stringify(layers) === '["s0"]';
  }, 250);
  const lone = await waitWidth(bob, alice, 'Bob receives Alice\'s one layer', 10_000, (w) => w <= 320);
  info(`server: layers ${layers.join(', ')}; Bob receives ${lone.frameWidth}x${lone.frameHeight}`);

  await showAt(bob, trackId, LARGE);
  const t1 = Date.now();
  const three = await waitSending(alice, 'L3T3_KEY', 'with the tile large again, Alice sends L3T3_KEY 1280 wide', 15_000, (w) => w >= 1280);
  info(`large tile again: Alice sends ${three.scalabilityMode} ${three.frameWidth} wide after ${Date.now() - t1} ms`);
  const again = await waitWidth(bob, alice, 'the large tile gets 1280x720 again', 30_000, (w) => w >= 1280);
  info(`large tile again: Bob receives ${again.frameWidth}x${again.frameHeight} after ${Date.now() - t1} ms`);

  await checkSvcTable(alice.page);
  const refused = await alice.page.evaluate(() => document.getElementById('log-lines').textContent.includes('browser refused scalabilityMode'));
  if (refused) fail(`Alice's page says the browser refused a scalabilityMode`);

  const errors = await bob.page.evaluate(() => window.chorus.events.filter((m) => m.type === 'error').map((m) => m.code));
  if (errors.length) fail(`Bob's page got errors from the server: ${errors.join(', ')}`);
  failOnPageErrors(t.pages);
}

t.run({ main, limitMs: 100_000 });
