#!/usr/bin/env node
// Browser test of device choice on the demo page (static/devices.js): two headless Chromium
// pages (Alice, Bob) join one room, Alice sending her camera in three simulcast layers
// (the page's default), and Bob sees her camera play. Alice's camera and microphone selects
// list the fake devices; she picks a camera (another one if there is one, else the same
// one again, which still means a fresh getUserMedia track): her publisher's video sender
// now carries a new track (replaceTrack) with the same three encodings, the old one is
// stopped, and Bob keeps decoding her camera, without any new offer or answer. The same
// for the microphone. Where the browser has setSinkId, choosing a speaker sets it on every
// <audio> element.
//
//   CHORUS_URL    server base URL (default http://127.0.0.1:7880)
//   CHROMIUM      browser binary (default /usr/bin/chromium)
//   E2E_ARTIFACTS directory for screenshots and logs on failure (default: a new temp dir)
//
// Run inside a private network namespace (scripts/browser-test.sh devices does that).
'use strict';

const {
  sleep, fail, until, snapshot, cameraPlays, failOnPageErrors, demoTest,
} = require('./lib');

const WHOLE_TEST_MS = 80_000;
const t = demoTest('devices');
const { info } = t;

/** Waits until `viewer` shows `owner`'s camera and it plays on (10 frames more). */
const playing = (viewer, owner, what) => cameraPlays(viewer, owner, what, 10);

/** SDP exchanges so far: offers and answers the page got from the server. */
const sdpCount = async (p) => (await snapshot(p)).eventTypes.filter((e) => e === 'offer' || e === 'answer').length;

/** The publisher sender of `kind`: its track's id and state, and its encodings' rids. */
function sender(p, kind) {
  return p.page.evaluate((k) => {
    const s = window.chorus.pubPc.getSenders().find((x) => x.track && x.track.kind === k);
    const rids = s ? (s.getParameters().encodings || []).map((e) => e.rid || '') : [];
    return s ? { id: s.track.id, readyState: s.track.readyState, rids: rids.join(',') } : null;
  }, kind);
}

/** Picks the last other option of `select` if there is one, else the same one again. */
async function choose(p, testid) {
  const options = await p.page.$$eval(`[data-testid="${testid}"] option`, (os) => os.map((o) => o.value));
  if (options.length === 0) fail(`${p.name}'s ${testid} lists no device`);
  const current = await p.page.$eval(`[data-testid="${testid}"]`, (s) => s.value);
  const other = [...options].reverse().find((v) => v !== current);
  if (other) {
    await p.page.selectOption(`[data-testid="${testid}"]`, other);
  } else {
    // One device only (Chromium's fake capture has one camera): choose it again.
    await p.page.$eval(`[data-testid="${testid}"]`, (s) => s.dispatchEvent(new Event('change')));
  }
  return { options: options.length, chosen: other || current };
}

async function switchAndCheck(alice, bob, kind, testid) {
  const before = await sender(alice, kind);
  const switchesBefore = await alice.page.evaluate(() => window.chorus.devices.switches.length);
  const { options } = await choose(alice, testid);
  const after = await until(`Alice's ${kind} sender gets a new track`, 10_000, async () => {
    const now = await sender(alice, kind);
    return now && now.id !== before.id && now.readyState === 'live' ? now : null;
  });
  if (after.rids !== before.rids) fail(`the ${kind} sender's encodings changed: [${before.rids}] → [${after.rids}]`);
  const sw = await alice.page.evaluate((n) => window.chorus.devices.switches.slice(n), switchesBefore);
  if (sw.length !== 1 || sw[0].oldTrackId !== before.id) fail(`unexpected switches: ${JSON.stringify(sw)}`);
  const oldState = await alice.page.evaluate((id) => {
    const t = window.chorus.localStream.getTracks().find((x) => x.id === id);
    return t ? t.readyState : 'gone';
  }, before.id);
  if (oldState !== 'gone') fail(`the old ${kind} track is still in the local stream (${oldState})`);
  info(`${kind}: ${options} device(s) listed, sender track ${before.id.slice(0, 8)} → ${sw[0].newTrackId.slice(0, 8)}, encodings [${after.rids}]`);
}

async function main() {
  // Three fake cameras (this later switch wins over lib.js's plain one): I420, Y16 (a
  // depth camera, which Chromium does not send) and MJPEG; the test switches to the last.
  await t.launch({ extraArgs: ['--use-fake-device-for-media-stream=device-count=3'] });
  const room = `devices-${Date.now().toString(36)}`;
  // Alice sends her camera in three simulcast layers, which the switch must keep.
  const alice = await t.join('Alice', room);
  const bob = await t.join('Bob', room);
  await playing(bob, alice, "Bob sees Alice's camera");
  const layers = (await sender(alice, 'video')).rids;
  if (layers !== 'q,h,f') fail(`Alice does not send her camera in three layers: [${layers}]`);
  await until("Alice's camera select lists a device", 10_000, async () =>
    alice.page.$$eval('[data-testid="camera-select"] option', (os) => os.length > 0));
  await until('Bob is subscribed to everything', 10_000, async () => (await snapshot(bob)).sub.signaling === 'stable');
  await sleep(1000); // let the last renegotiation of the join settle before counting
  const sdpBefore = [await sdpCount(alice), await sdpCount(bob)];

  await switchAndCheck(alice, bob, 'video', 'camera-select');
  await playing(bob, alice, "Bob still sees Alice's camera after the switch");
  await switchAndCheck(alice, bob, 'audio', 'mic-select');

  const sdpAfter = [await sdpCount(alice), await sdpCount(bob)];
  if (sdpAfter.join() !== sdpBefore.join()) fail(`switching renegotiated: offers+answers ${sdpBefore} → ${sdpAfter}`);
  await playing(bob, alice, "Bob still sees Alice's camera at the end");
  info('camera and microphone switched, Bob decodes on, no renegotiation');

  // The speaker: setSinkId on every <audio> element, where Chromium lists an output.
  const speaker = await alice.page.evaluate(() => ({
    supported: window.chorus.devices.sinkSupported,
    options: [...document.querySelectorAll('[data-testid="speaker-select"] option')].map((o) => o.value),
  }));
  if (speaker.supported && speaker.options.length > 0) {
    const id = speaker.options[speaker.options.length - 1];
    await alice.page.selectOption('[data-testid="speaker-select"]', id);
    await until('every <audio> element plays on the chosen speaker', 5_000, async () =>
      alice.page.evaluate((want) => {
        const els = [...document.querySelectorAll('audio')];
        return els.length > 0 && els.every((el) => el.sinkId === want);
      }, id));
    info(`speaker: ${speaker.options.length} output(s), all <audio> on the chosen one`);
  } else {
    info(`speaker: not checked (setSinkId ${speaker.supported ? 'present' : 'absent'}, ${speaker.options.length} outputs)`);
  }

  failOnPageErrors(t.pages);
}

t.run({ main, limitMs: WHOLE_TEST_MS });
