#!/usr/bin/env node
// Browser test of AV1 SVC through the demo page: Alice's Chromium page publishes its
// fake camera at 1280x720 as one AV1 stream in three spatial and three temporal layers
// (`?codec=av1&svc=1`: scalabilityMode L3T3_KEY, AV1 first with setCodecPreferences);
// Bob's page (`?simulcast=0`) receives it and resizes the <video> showing Alice: large,
// small, large again. It checks
//
// - the server's answer to Alice takes the AV1 dependency descriptor (and
//   extmap-allow-mixed): Chromium sends AV1 in layers only where it is negotiated;
// - Alice's Chromium sends AV1 in L3T3_KEY (outbound-rtp codec and `scalabilityMode`);
// - Bob decodes AV1 at every tile size, and what he gets is the base spatial layer
//   (320x180 here) whatever the size: the server does not forward the descriptor, and
//   without it Chromium decodes only one spatial layer (docs/signaling.md, "AV1"; given
//   more it stalls, given all it decodes nothing), so the server sends every subscriber
//   the base layer alone; decoding keeps pace with the frames received throughout;
// - since nobody can be sent more, dynacast tells Alice only `s0` is needed, even while
//   Bob's tile is large: her page sends L1T3 at most 320 wide, and the server, reading
//   the layers from the descriptors, lists her camera with `s0` alone
//   (`GET /v1/rooms/{room}/participants`, `tracks[].layers`).
//
//   CHORUS_URL, CHROMIUM, E2E_ARTIFACTS as in simulcast.js; helpers from layers.js.
//
// Exit code 0 on success, 1 on failure. Run inside a private network namespace with only
// loopback (scripts/browser-test.sh av1 does that).
'use strict';

const { fail, until, failOnPageErrors, demoTest } = require('./lib');
const { SMALL, LARGE, received, sending, serverLayers, showAt, waitSending, waitWidth } = require('./layers');

const DD_URI = 'https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension';
// The base layer of a 1280x720 L3T3 camera is 320x180; anything wider is an upper layer.
const BASE_MAX_WIDTH = 400;

const t = demoTest('av1');
const { info } = t;

/** The video section of the server's answer to `p`'s publisher connection. */
const answeredVideo = (p) =>
  p.page.evaluate(() => {
    const sdp = (window.chorus.pubPc.remoteDescription || {}).sdp || '';
    const video = sdp.split(/\r\n(?=m=)/).find((s) => s.startsWith('m=video')) || '';
    return { mixed: /\r\na=extmap-allow-mixed\r\n/.test(sdp), video };
  });

async function main() {
  await t.launch({ viewport: { width: 1400, height: 900 } });
  const room = `av1-${Date.now().toString(36)}`;
  const alice = await t.join('Alice', room, { query: '?codec=av1&svc=1' });
  info(`Alice joined as ${alice.participantId}`);
  const bob = await t.join('Bob', room, { query: '?simulcast=0' });
  info(`Bob joined as ${bob.participantId}`);
  const trackId = await until('Alice publishes her camera', 15_000, () =>
    alice.page.evaluate(() => window.chorus.localTracks.camera && window.chorus.localTracks.camera.trackId));

  const answer = await answeredVideo(alice);
  if (!/ AV1\/90000\r\n/.test(answer.video)) fail(`the answer's video section takes no AV1:\n${answer.video}`);
  if (!answer.video.includes(DD_URI)) fail(`the answer's AV1 section takes no dependency descriptor:\n${answer.video}`);
  if (!answer.mixed) fail('the answer has no a=extmap-allow-mixed');
  info('the answer takes AV1 with the dependency descriptor and extmap-allow-mixed');

  let out = null;
  out = await until(() => `Alice sends AV1 in L3T3_KEY (outbound-rtp: ${JSON.stringify(out)})`, 20_000, async () => {
    out = await sending(alice);
    return out && /av1/i.test(out.codec || '') && out.scalabilityMode === 'L3T3_KEY' ? out : null;
  }, 500);
  info(`Alice sends ${out.codec} ${out.scalabilityMode}`);
  await until(`Bob's page shows Alice's camera`, 20_000, () =>
    bob.page.evaluate((id) => !!document.querySelector(`video[data-track-id="${id}"]`), trackId));

  await showAt(bob, trackId, LARGE);
  const base = (w) => w <= BASE_MAX_WIDTH;
  const large = await waitWidth(bob, alice, 'a 1280x720 tile gets the base layer, decoding', 15_000, base);
  info(`large tile: Bob receives ${large.frameWidth}x${large.frameHeight} in ${large.codec}`);
  if (!/av1/i.test(large.codec || '')) fail(`Bob receives Alice's camera in ${large.codec}, not AV1`);
  // Dynacast: s1 and s2 are nobody's to receive, so Alice's page drops them (3 s after
  // the server first saw them), though Bob's tile is large.
  const one = await waitSending(alice, 'L1T3', 'with the base layer all anyone gets, Alice sends L1T3 at most 320 wide', 25_000, (w) => w > 0 && w <= 320);
  info(`Alice sends ${one.scalabilityMode} ${one.frameWidth} wide (scaled down by ${one.scale})`);
  let layers = null;
  await until(() => `the server lists Alice's camera in one spatial layer (got ${JSON.stringify(layers)})`, 10_000, async () => {
    layers = await serverLayers(room, trackId);
    return JSON.stringify(layers) === '["s0"]';
  }, 250);
  info(`server: layers ${layers.join(', ')}`);

  await showAt(bob, trackId, SMALL);
  const small = await waitWidth(bob, alice, 'a 160x90 tile gets the base layer, decoding', 15_000, base);
  info(`small tile: Bob receives ${small.frameWidth}x${small.frameHeight}`);

  await showAt(bob, trackId, LARGE);
  const again = await waitWidth(bob, alice, 'the large tile again gets the base layer, decoding', 15_000, base);
  info(`large tile again: Bob receives ${again.frameWidth}x${again.frameHeight}`);

  // A decoder that stalls keeps receiving frames it cannot decode (hundreds behind).
  const last = await received(bob, alice);
  const behind = (last.framesReceived || 0) - (last.framesDecoded || 0);
  info(`Bob: ${last.framesDecoded} of ${last.framesReceived} frames decoded, ${last.pliCount} PLIs sent`);
  if (behind > 15) fail(`Bob decoded ${last.framesDecoded} of the ${last.framesReceived} frames he received`);

  const errors = await bob.page.evaluate(() => window.chorus.events.filter((m) => m.type === 'error').map((m) => m.code));
  if (errors.length) fail(`Bob's page got errors from the server: ${errors.join(', ')}`);
  failOnPageErrors(t.pages);
}

t.run({ main, limitMs: 100_000 });
