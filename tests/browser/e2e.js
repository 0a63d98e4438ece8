#!/usr/bin/env node
// Browser end-to-end test of Chorus through its demo page.
//
// One headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) with three
// pages and one headless Firefox (Debian's firefox-esr, driven by geckodriver over
// WebDriver, see firefox.js) with one page join one fresh room through the form on the
// demo page. Each page must decode video and receive audio from the other three; one
// mutes and unmutes (the others' tiles follow); then one page leaves and the others must
// see it go (roster, tile, participant_left event) while the remaining three keep
// decoding each other.
//
//   CHORUS_URL   server base URL (default http://127.0.0.1:7880)
//   CHROMIUM     browser binary (default /usr/bin/chromium)
//   FIREFOX      browser binary (default /usr/bin/firefox-esr)
//   GECKODRIVER  geckodriver binary (default: on PATH, else ~/.cargo/bin/geckodriver)
//   E2E_ARTIFACTS directory for screenshots and logs on failure (default: a new temp dir);
//                when set, screenshots of the call are saved there on success too
//
// Exit code 0 on success, 1 on failure. Run the server and this script inside a private
// network namespace with only loopback (scripts/browser-test.sh does that).
'use strict';

const fs = require('fs');
const path = require('path');
const { FirefoxPage } = require('./firefox');
const {
  sleep, fail, until, BASE, CHROMIUM_EXE, snapshot: snap, openDemoPage, joinThroughForm, failOnPageErrors,
  closeQuietly, demoTest,
} = require('./lib');

const WHOLE_TEST_MS = 140_000;
// Who joins, in this order, and in which browser. Carol leaves later; Alice mutes.
// Each camera goes out as the page sends it by default: three simulcast layers.
const QUERY = '';
const PEOPLE = [
  { name: 'Alice', browser: 'Chromium' },
  { name: 'Bob', browser: 'Chromium' },
  { name: 'Carol', browser: 'Chromium' },
  { name: 'Dave', browser: 'Firefox' },
];

const t = demoTest('e2e');
const { info, pages } = t;
let firefox = null;
let room = null;

const stats = (p) => p.page.evaluate(() => window.chorus.inboundStats());
const framesFrom = (st, o) => ((st.byParticipant[o.participantId] || {}).video || {}).framesDecoded || 0;

/** The room's downstream estimates and layer bitrates (control API), for a failure's message. */
async function estimates() {
  try {
    const auth = `Basic ${Buffer.from('devkey:devsecret-change-me-0123456789abcdef').toString('base64')}`;
    const res = await fetch(`${BASE}/v1/rooms/${encodeURIComponent(room)}`, { headers: { authorization: auth } });
    const r = await res.json();
    const layers = (r.simulcast || []).map((x) => (x.layers || []).map((l) => `${l.rid} ${Math.round(l.bitrate_bps / 1000)}k`).join('/'));
    const subs = (r.subscribers || []).map((x) => `${x.identity} ${Math.round(x.estimated_bitrate_bps / 1000)}k (loss ${x.loss_percent} %, rtt ${x.rtt_ms} ms)`);
    return `${subs.join(', ')}; layers ${layers.join(', ')}`;
  } catch (e) {
    return `unknown (${e.message})`;
  }
}

/** Whether `p` was told since `since` (its page clock) that a video of `o` is paused for bandwidth, or still has one paused. */
function bandwidthPaused(p, o, since) {
  return p.page.evaluate(({ pid, since }) => {
    const c = window.chorus;
    const ids = new Set(((c.roster.get(pid) || {}).tracks || []).map((t) => t.track_id));
    return c.events.some((m) => m.type === 'video_paused' && m.reason === 'bandwidth' && ids.has(m.track_id) && m.at >= since) ||
      [...c.pausedVideos.keys()].some((id) => ids.has(id));
  }, { pid: o.participantId, since });
}

/**
 * Measures `ms` of video decoding on every page of `group` from every other, until each
 * decoded at least `minFrames`. A video the server paused for bandwidth meanwhile
 * (`video_paused`: its estimate of a link on a busy machine) is measured again, 20 s at
 * most; any other stall fails at once. Returns the stats of the window that passed.
 */
async function everyoneDecodes(group, ms, minFrames, what) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const since = await Promise.all(group.map((p) => p.page.evaluate(() => performance.now())));
    const before = await Promise.all(group.map(stats));
    await sleep(ms);
    const after = await Promise.all(group.map(stats));
    let paused = null;
    for (const [i, p] of group.entries()) {
      for (const o of group.filter((x) => x !== p)) {
        const frames = framesFrom(after[i], o) - framesFrom(before[i], o);
        if (frames >= minFrames) continue;
        const detail = `${what}${p.name} decoded only ${frames} video frames from ${o.name} in ${ms} ms`;
        if (!(await bandwidthPaused(p, o, since[i]))) fail(`${detail} (stats before ${JSON.stringify(before[i])}, after ${JSON.stringify(after[i])})`);
        paused = detail;
      }
    }
    if (!paused) return { before, after };
    if (Date.now() > deadline) fail(`${paused}: paused for bandwidth and not back within 20 s; the server's estimates: ${await estimates()}`);
    info(`${paused}: the server paused it for bandwidth; measuring again`);
  }
}

async function main() {
  // ---------------------------------------------------------------- browsers
  // Firefox starts (geckodriver, then the browser) while Chromium does.
  info('launching Firefox through geckodriver');
  const firefoxStarting = FirefoxPage.launch().then((ff) => {
    firefox = ff;
    info(`${ff.version} started`);
    return ff;
  });
  firefoxStarting.catch(() => {}); // awaited below; its failure is reported there
  info(`launching ${CHROMIUM_EXE}`);
  await t.launch();
  await firefoxStarting;

  room = `e2e-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
  info(`room ${room}`);

  // ---------------------------------------------------------------- join through the UI
  for (const { name, browser } of PEOPLE) {
    let p;
    if (browser === 'Firefox') {
      // Firefox's output (the page console included) is collected by firefox.js.
      p = { name, browser, page: firefox, console: firefox.output, participantId: null };
      pages.push(p);
      await firefox.goto(`${BASE}/${QUERY}`);
      // Uncaught errors and rejections, checked at the end like Chromium's pageerror.
      await firefox.evaluate(() => {
        window.__e2eErrors = [];
        window.addEventListener('error', (e) => window.__e2eErrors.push(String(e.message)));
        window.addEventListener('unhandledrejection', (e) => window.__e2eErrors.push(String(e.reason && e.reason.message || e.reason)));
      });
    } else {
      p = await openDemoPage(t.context, pages, { name, browser, query: QUERY });
    }
    await joinThroughForm(p, room);
    info(`${name} (${browser}) joined as ${p.participantId}`);
  }

  // ---------------------------------------------------------------- everyone sees everyone
  for (const p of pages) {
    const others = pages.filter((o) => o !== p);
    await until(() => `${p.name} lists ${others.map((o) => o.name).join(' and ')} in its roster with a tile each`, 15_000, async () => {
      const s = await snap(p);
      const ids = new Set(s.roster.map((r) => r.participant_id));
      if (!others.every((o) => ids.has(o.participantId))) return false;
      for (const o of others) {
        const label = await p.page.evaluate((pid) => {
          const el = document.querySelector(`.tile[data-participant-id="${pid}"] [data-testid="tile-name"]`);
          return el ? el.textContent : null;
        }, o.participantId);
        if (label === null) return false;
        if (label !== o.name) fail(`${p.name}'s tile for ${o.name} is labelled "${label}"`);
      }
      const items = await p.page.$$eval('#roster li', (els) => els.map((e) => e.dataset.participantId));
      return others.every((o) => items.includes(o.participantId)) && items.includes(p.participantId);
    });
  }
  info('rosters complete');

  // ---------------------------------------------------------------- media flows
  for (const p of pages) {
    const others = pages.filter((o) => o !== p);
    await until(() => `${p.name} decodes video from ${others.map((o) => o.name).join(' and ')} ` +
        `(last stats: ${JSON.stringify(p.lastStats || null)}; page: ${JSON.stringify(p.lastSnap || null)})`, 30_000, async () => {
      p.lastSnap = await snap(p);
      const st = await stats(p);
      p.lastStats = st;
      return others.every((o) => ((st.byParticipant[o.participantId] || {}).video || {}).framesDecoded > 0);
    }, 500);
  }
  info('first frames decoded everywhere');

  // What DTLS negotiated on each connection, as Chromium reports it (`getStats()`
  // transport; Chromium names the profiles as rtc and the server log do). Chorus
  // supports all four; which one wins is Chromium's order (docs/architecture.md,
  // "SRTP profiles").
  const SRTP_PROFILES = ['SRTP_AEAD_AES_128_GCM', 'SRTP_AEAD_AES_256_GCM', 'SRTP_AES128_CM_HMAC_SHA1_80', 'SRTP_AES128_CM_HMAC_SHA1_32'];
  for (const p of pages) {
    const t = await p.page.evaluate(() => window.chorus.transportStats());
    for (const target of ['publisher', 'subscriber']) {
      const c = t[target] || {};
      info(`${p.name} (${p.browser}) ${target}: srtpCipher ${c.srtpCipher}, dtlsCipher ${c.dtlsCipher}, ${p.browser}'s DTLS role ${c.dtlsRole}`);
      if (!SRTP_PROFILES.includes(c.srtpCipher)) fail(`${p.name}'s ${target} connection reports SRTP profile "${c.srtpCipher}", not one of ${SRTP_PROFILES.join(', ')}`);
    }
  }

  const MEASURE_MS = 3000;
  const { before, after } = await everyoneDecodes(pages, MEASURE_MS, 5, '');
  let audioMixed = false;
  pages.forEach((p, i) => {
    for (const o of pages.filter((x) => x !== p)) {
      const b = before[i].byParticipant[o.participantId] || {};
      const a = after[i].byParticipant[o.participantId] || {};
      const vb = b.video || {};
      const va = a.video || {};
      const frames = (va.framesDecoded || 0) - (vb.framesDecoded || 0);
      const fps = frames / (MEASURE_MS / 1000);
      info(`${p.name} <- ${o.name}: video ${fps.toFixed(1)} fps decoded, ${va.frameWidth}x${va.frameHeight} ${va.codec || ''}`);

      // Audio: one track per remote participant, or (when the server mixes) one unmapped mixed track.
      let ab = b.audio;
      let aa = a.audio;
      let label = `from ${o.name}`;
      if (!aa) {
        ab = before[i].unmapped.audio;
        aa = after[i].unmapped.audio;
        label = 'in the mixed audio stream';
        audioMixed = true;
      }
      if (!aa) fail(`${p.name} has no audio track from ${o.name} and no mixed audio track (stats: ${JSON.stringify(after[i])})`);
      ab = ab || {};
      const pkts = (aa.packetsReceived || 0) - (ab.packetsReceived || 0);
      const samples = (aa.totalSamplesReceived || 0) - (ab.totalSamplesReceived || 0);
      info(`${p.name} <- ${o.name}: audio ${pkts} packets, ${samples} samples ${label} ${aa.codec || ''}`);
      if (pkts <= 0) fail(`${p.name} received no audio packets ${label} in ${MEASURE_MS} ms (before ${JSON.stringify(ab)}, after ${JSON.stringify(aa)})`);
      if (samples <= 0) fail(`${p.name} receives audio packets ${label} but decodes no samples (is it attached to an <audio> element?)`);
    }
  });
  if (audioMixed) info('audio arrives as a mixed stream');

  // The tiles really show it: every remote <video> has a size.
  for (const p of pages) {
    for (const o of pages.filter((x) => x !== p)) {
      await until(() => `${p.name}'s tile for ${o.name} shows a playing video`, 5_000, () =>
        p.page.$eval(`.tile[data-participant-id="${o.participantId}"]`, (tile) => {
          const v = tile.querySelector('video[data-track-id]');
          return !!v && v.videoWidth > 0 && !v.paused;
        }));
    }
  }
  info('all tiles play video');
  if (process.env.E2E_ARTIFACTS) {
    fs.mkdirSync(process.env.E2E_ARTIFACTS, { recursive: true });
    for (const p of pages) await p.page.screenshot({ path: path.join(process.env.E2E_ARTIFACTS, `${p.name}-in-call.png`) });
  }

  // ---------------------------------------------------------------- mute shows on the others' tiles
  {
    const [m, ...watchers] = pages;
    const tileAttr = (w, attr) => w.page.$eval(`.tile[data-participant-id="${m.participantId}"]`, (t, a) => t.dataset[a], attr);
    info(`${m.name} mutes the mic and turns the camera off`);
    await m.page.click('#mic');
    await m.page.click('#cam');
    for (const w of watchers) {
      await until(() => `${w.name} sees ${m.name}'s mic muted and camera off (track_muted)`, 10_000, async () =>
        (await tileAttr(w, 'micMuted')) === 'true' && (await tileAttr(w, 'camMuted')) === 'true');
    }
    await m.page.click('#mic');
    await m.page.click('#cam');
    const frames = async (w) => (((await stats(w)).byParticipant[m.participantId] || {}).video || {}).framesDecoded || 0;
    const unmutedAt = await Promise.all(watchers.map(frames));
    for (const w of watchers) {
      await until(() => `${w.name} sees ${m.name}'s mic and camera back on`, 10_000, async () =>
        (await tileAttr(w, 'micMuted')) === 'false' && (await tileAttr(w, 'camMuted')) === 'false');
    }
    for (const [i, w] of watchers.entries()) {
      await until(() => `${w.name} decodes ${m.name}'s video again after the camera is back on`, 10_000,
        async () => (await frames(w)) >= unmutedAt[i] + 10, 500);
    }
    info('mute and unmute seen by the others, video resumed');
  }

  // ---------------------------------------------------------------- the chat (data channels)
  // Alice (Chromium) and Dave (Firefox) each type a line into the chat form; everyone
  // else sees it, with the sender the server stamped (docs/signaling.md, "Data messages").
  for (const p of pages) {
    await until(() => `${p.name}'s chat opens (the _reliable data channel)`, 10_000, () =>
      p.page.evaluate(() => window.chorus.chatOpen === true));
  }
  for (const sender of [pages[0], pages.find((p) => p.browser === 'Firefox')]) {
    const text = `hello from ${sender.name} ${Math.random().toString(36).slice(2, 8)}`;
    const identity = await sender.page.evaluate(() => window.chorus.identity);
    await sender.page.fill('#chat-input', text);
    await sender.page.click('#chat-send');
    for (const p of pages.filter((x) => x !== sender)) {
      await until(() => `${p.name} shows ${sender.name}'s chat line "${text}"`, 10_000, async () => {
        const line = await p.page.evaluate((t) => window.chorus.chat.find((l) => l.text === t) || null, text);
        if (!line) return false;
        if (line.from !== identity || line.participantId !== sender.participantId) {
          fail(`${p.name} got ${sender.name}'s line stamped ${JSON.stringify(line)}, expected ${identity} ${sender.participantId}`);
        }
        const shown = await p.page.$eval('#chat-log', (el) => el.textContent);
        return shown.includes(text);
      });
    }
    const own = await sender.page.evaluate((t) => window.chorus.chat.filter((l) => l.text === t), text);
    if (own.length !== 1 || !own[0].self) fail(`${sender.name}'s own line: ${JSON.stringify(own)} (its own message must not come back)`);
  }
  info('chat lines from Chromium and Firefox reached everyone, stamped by the server');

  // ---------------------------------------------------------------- one leaves
  const c = pages.find((p) => p.name === 'Carol');
  const stay = pages.filter((p) => p !== c);
  info(`${c.name} clicks leave`);
  await c.page.click('#leave');
  await until(() => `${c.name}'s page returns to the join form after leaving`, 10_000, async () => {
    const s = await snap(c);
    return s.state === 'left' && (await c.page.isVisible('#join-form'));
  });
  for (const p of stay) {
    await until(() => `${p.name} sees ${c.name} leave (roster, tile, participant_left)`, 10_000, async () => {
      const s = await snap(p);
      if (s.roster.some((r) => r.participant_id === c.participantId)) return false;
      if (await p.page.$(`.tile[data-participant-id="${c.participantId}"]`)) return false;
      if (await p.page.$(`#roster li[data-participant-id="${c.participantId}"]`)) return false;
      const left = await p.page.evaluate((pid) => window.chorus.events.find((m) => m.type === 'participant_left' && m.participant_id === pid) || null, c.participantId);
      if (!left) return false;
      if (left.reason !== 'client_left') fail(`${p.name} got participant_left for ${c.name} with reason "${left.reason}", expected "client_left"`);
      return true;
    });
  }
  info(`${stay.map((p) => p.name).join(', ')} saw ${c.name} leave`);

  // The ones left keep receiving each other after the server renegotiated.
  await everyoneDecodes(stay, 2000, 3, `after ${c.name} left, `);
  info('remaining pages still decoding each other');

  failOnPageErrors(pages.filter((p) => p.browser !== 'Firefox'));
  for (const p of pages.filter((x) => x.browser === 'Firefox')) {
    const errs = await p.page.evaluate(() => window.__e2eErrors || []);
    if (errs.length) fail(`${p.name}'s page threw: ${errs.join(' | ')}`);
  }
}

t.run({
  main,
  limitMs: WHOLE_TEST_MS,
  tail: 40,
  state: async (p) => ({ browser: p.browser, snapshot: await snap(p), events: await p.page.evaluate(() => window.chorus.events) }),
  cleanup: () => closeQuietly(firefox),
});
