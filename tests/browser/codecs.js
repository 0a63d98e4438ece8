#!/usr/bin/env node
// Browser test of H.264 next to VP8 through the demo page: two headless Chromium pages
// and a headless Firefox page join one room, Alice sending her camera in H.264 (`?codec=h264`, which makes the page
// put H.264 first with setCodecPreferences) and Bob in VP8. Each must decode the
// other's video, in the codec it was sent in: Bob's decoder reports video/H264 for
// Alice, Alice's video/VP8 for Bob.
//
// Dave joins in Firefox, which decodes H.264 only through Cisco's OpenH264 plugin that it
// downloads at run time (this machine reaches no such server): his answer takes Alice's
// H.264 section with VP8 only, so the server sends him nothing of it (counted as
// `codec_not_accepted` in the room's stats) while he decodes Bob's VP8.
//
//   CHORUS_URL   server base URL (default http://127.0.0.1:7880)
//   CHROMIUM     browser binary (default /usr/bin/chromium)
//   E2E_ARTIFACTS directory for screenshots and logs on failure (default: a new temp dir)
//
// Exit code 0 on success, 1 on failure. Run inside a private network namespace with only
// loopback (scripts/browser-test.sh codecs does that).
'use strict';

const { FirefoxPage } = require('./firefox');
const { sleep, fail, until, BASE, openDemoPage, joinThroughForm, failOnPageErrors, closeQuietly, demoTest } = require('./lib');

const PEOPLE = [
  { name: 'Alice', query: '?codec=h264', sends: 'video/H264' },
  { name: 'Bob', query: '', sends: 'video/VP8' },
  { name: 'Dave', query: '', sends: 'video/VP8', browser: 'Firefox' },
];
// The server's development credentials (scripts/run.sh and the test server use them).
const API_AUTH = `Basic ${Buffer.from('devkey:devsecret-change-me-0123456789abcdef').toString('base64')}`;

const t = demoTest('codecs');
const { info, pages } = t;
let firefox = null;

const video = async (p, from) =>
  ((await p.page.evaluate(() => window.chorus.inboundStats())).byParticipant[from.participantId] || {}).video || {};

async function main() {
  const firefoxStarting = FirefoxPage.launch().then((ff) => (firefox = ff));
  firefoxStarting.catch(() => {}); // awaited below; its failure is reported there
  await t.launch({ viewport: { width: 900, height: 600 } });
  await firefoxStarting;
  const room = `codecs-${Date.now().toString(36)}`;

  for (const { name, query, sends, browser } of PEOPLE) {
    let p;
    if (browser === 'Firefox') {
      p = { name, sends, browser, page: firefox, console: firefox.output, participantId: null };
      pages.push(p);
      await firefox.goto(`${BASE}/${query}`);
    } else {
      p = await openDemoPage(t.context, pages, { name, query, sends, browser: 'Chromium' });
    }
    await joinThroughForm(p, room);
    info(`${name} joined as ${p.participantId}, sending ${sends}`);
  }

  // Each decodes the others, in the codec each sends; Firefox all but H.264.
  const decodes = (p, o) => !(p.browser === 'Firefox' && o.sends === 'video/H264');
  for (const p of pages) {
    for (const o of pages.filter((x) => x !== p && decodes(p, x))) {
      let last = null;
      const v = await until(() => `${p.name} decodes ${o.name}'s video (last: ${JSON.stringify(last)})`, 30_000, async () => {
        last = await video(p, o);
        return last.framesDecoded > 0 && last.codec ? last : null;
      }, 500);
      const codec = String(v.codec).split(' ')[0];
      if (codec.toLowerCase() !== o.sends.toLowerCase()) {
        fail(`${p.name} receives ${o.name}'s video as ${v.codec}, not ${o.sends}`);
      }
      const before = v.framesDecoded;
      await sleep(2000);
      const after = (await video(p, o)).framesDecoded || 0;
      info(`${p.name} <- ${o.name}: ${v.codec}, ${v.frameWidth}x${v.frameHeight}, ${after - before} frames in 2 s`);
      if (after - before < 5) fail(`${p.name} decoded only ${after - before} frames of ${o.name}'s ${o.sends} in 2 s`);
    }
  }
  // Dave got nothing of Alice's H.264: the server held it back.
  const [alice, dave] = [pages[0], pages[2]];
  const held = await until(() => `the room's stats count codec_not_accepted for Dave`, 10_000, async () => {
    const res = await fetch(`${BASE}/v1/rooms/${encodeURIComponent(room)}`, { headers: { authorization: API_AUTH } });
    if (!res.ok) throw new Error(`GET /v1/rooms/${room}: HTTP ${res.status}`);
    const n = (((await res.json()).forwarding || {}).skipped || {}).codec_not_accepted || 0;
    return n > 0 ? n : null;
  });
  const got = await video(dave, alice);
  info(`Dave <- Alice: ${got.packetsReceived || 0} packets, ${got.framesDecoded || 0} frames (server held back ${held})`);
  if (got.packetsReceived > 0) fail(`Firefox received ${got.packetsReceived} packets of Alice's H.264, which it cannot decode`);
  failOnPageErrors(pages.filter((x) => x.browser !== 'Firefox'));
}

t.run({ main, limitMs: 120_000, cleanup: () => closeQuietly(firefox) });
