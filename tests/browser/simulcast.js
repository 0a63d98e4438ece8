#!/usr/bin/env node
// Browser test of simulcast through the demo page: Alice's Chromium page publishes its
// fake camera at 1280x720 in three simulcast layers (the page's default: rids q, h, f,
// sendEncodings with scaleResolutionDownBy 4, 2, 1); Bob's page (`?simulcast=0`: one
// stream, one encoding) receives it.
// Bob's page resizes the <video> showing Alice (the demo page's ResizeObserver sends
// `track_settings` with the tile's size), large, then small, then large again. It checks
//
// - the server lists Alice's camera with three layers, all arriving
//   (`GET /v1/rooms/{room}`, `simulcast[].layers`);
// - Bob's received resolution (getStats inbound-rtp frameWidth) follows the tile: a
//   small tile (160x90) gets the lowest layer, a large one (1280x720) the top layer, at
//   least three times as wide (four without CPU adaptation);
// - dynacast: while Bob's tile is small, the server tells Alice that only `q` is needed
//   (`publisher_layers`) and her page turns `h` and `f` off (RTCRtpSender encodings
//   `active`); they come back on when the tile is large again;
// - Bob keeps decoding Alice's video through every switch.
//
//   CHORUS_URL   server base URL (default http://127.0.0.1:7880)
//   CHROMIUM     browser binary (default /usr/bin/chromium)
//   E2E_ARTIFACTS directory for screenshots and logs on failure (default: a new temp dir)
//
// Exit code 0 on success, 1 on failure. Run inside a private network namespace with only
// loopback (scripts/browser-test.sh simulcast does that).
'use strict';

const { fail, until, BASE, failOnPageErrors, demoTest } = require('./lib');
const { API_AUTH, SMALL, LARGE, showAt, waitWidth } = require('./layers');

const t = demoTest('simulcast');
const { info } = t;
let room = null;

/** The `active` flag of each of `p`'s camera encodings, by rid. */
const encodings = (p) =>
  p.page.evaluate(() => {
    const cam = window.chorus.localTracks.camera;
    const sender = cam && window.chorus.pubPc.getSenders().find((s) => s.track === cam.track);
    return sender ? sender.getParameters().encodings.map((e) => ({ rid: e.rid, active: e.active !== false })) : [];
  });

/** Alice's camera as the control API lists it under `simulcast`. */
async function serverLayers(trackId) {
  const res = await fetch(`${BASE}/v1/rooms/${encodeURIComponent(room)}`, { headers: { authorization: API_AUTH } });
  if (!res.ok) throw new Error(`GET /v1/rooms/${room}: HTTP ${res.status}`);
  return ((await res.json()).simulcast || []).find((s) => s.track_id === trackId) || null;
}

/** Waits until Alice's encodings are active as `want` says (by rid). */
async function waitEncodings(alice, what, ms, want) {
  let last = [];
  return until(() => `${what} (Alice's encodings: ${JSON.stringify(last)})`, ms, async () => {
    last = await encodings(alice);
    return last.length === 3 && last.every((e) => e.active === want[e.rid]) ? last : null;
  });
}

async function main() {
  await t.launch({ viewport: { width: 1400, height: 900 } });
  room = `simulcast-${Date.now().toString(36)}`;
  const alice = await t.join('Alice', room);
  info(`Alice joined as ${alice.participantId}`);
  const bob = await t.join('Bob', room, { query: '?simulcast=0' });
  info(`Bob joined as ${bob.participantId}`);
  const bobSends = await until('Bob publishes his camera', 15_000, async () => {
    const e = await encodings(bob);
    return e.length ? e : null;
  });
  if (bobSends.length !== 1 || bobSends[0].rid) fail(`?simulcast=0, yet Bob sends his camera as ${JSON.stringify(bobSends)}`);
  const trackId = await until('Alice publishes her camera', 15_000, () =>
    alice.page.evaluate(() => window.chorus.localTracks.camera && window.chorus.localTracks.camera.trackId));
  const capture = await alice.page.evaluate(() => window.chorus.localTracks.camera.track.getSettings());
  info(`Alice's camera ${trackId}: captured at ${capture.width}x${capture.height}`);
  await until(() => `Bob's page shows Alice's camera`, 20_000, () =>
    bob.page.evaluate((id) => !!document.querySelector(`video[data-track-id="${id}"]`), trackId));

  // Large first, so that every layer is needed and arrives.
  await showAt(bob, trackId, LARGE);
  let last = null;
  const layers = await until(() => `the server sees three layers of Alice's camera arriving (last: ${JSON.stringify(last)})`, 45_000, async () => {
    last = await serverLayers(trackId);
    const l = (last && last.layers) || [];
    return l.length === 3 && l.every((x) => x.packets > 0 && x.bitrate_bps > 0) ? l : null;
  }, 500);
  info(`server: layers ${layers.map((l) => `${l.rid} ${Math.round(l.bitrate_bps / 1000)} kbit/s ${l.fps} fps`).join(', ')}`);
  const large = await waitWidth(bob, alice, 'a 1280x720 tile gets more than the lowest layer', 30_000, (w) => w > 400);
  info(`large tile: Bob receives ${large.frameWidth}x${large.frameHeight}`);

  await showAt(bob, trackId, SMALL);
  const small = await waitWidth(bob, alice, 'a 160x90 tile gets the lowest layer', 15_000, (w) => w * 3 <= large.frameWidth && w <= 400);
  info(`small tile: Bob receives ${small.frameWidth}x${small.frameHeight}`);
  await waitEncodings(alice, 'dynacast turns off h and f while nobody needs them', 10_000, { q: true, h: false, f: false });
  info('Alice sends only q');

  await showAt(bob, trackId, LARGE);
  await waitEncodings(alice, 'dynacast turns h and f back on', 10_000, { q: true, h: true, f: true });
  const again = await waitWidth(bob, alice, 'the large tile gets the top layer again', 30_000, (w) => w >= 3 * small.frameWidth);
  info(`large tile again: Bob receives ${again.frameWidth}x${again.frameHeight}`);

  const sent = (await bob.page.evaluate(() => window.chorus.events.filter((m) => m.type === 'error').map((m) => m.code)));
  if (sent.length) fail(`Bob's page got errors from the server: ${sent.join(', ')}`);
  failOnPageErrors(t.pages);
}

t.run({ main, limitMs: 80_000 });
