// Helpers shared by the browser tests: bounded polling, failures that say what failed, and
// the setup every test of the demo page shares (demoTest: Chromium, pages, joining).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A failure of the test itself (as opposed to an error thrown while polling). */
class TestFailure extends Error {}
function fail(msg) {
  throw new TestFailure(msg);
}

/** Polls `fn` until it returns a truthy value; fails with `what()` after `ms`. */
async function until(what, ms, fn, intervalMs = 250) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e instanceof TestFailure) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : '';
      fail(`timed out after ${ms} ms: ${typeof what === 'function' ? what() : what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** Waits (10 s at most) until the server at `base` serves the demo page. */
function demoPageServed(base) {
  return until(`server at ${base} answers GET /`, 10_000, async () => {
    const res = await fetch(`${base}/`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.text();
    if (!body.includes('join-form')) throw new Error('GET / is not the demo page');
    return true;
  });
}

/**
 * Runs `main` under a watchdog of `limitMs`; on failure saves artifacts (bounded), then
 * cleans up and exits with the test's code.
 */
function runTest({ main, limitMs, info, dumpArtifacts, cleanup }) {
  (async () => {
    let code = 0;
    const watchdog = new Promise((_, reject) => {
      const t = setTimeout(
        () => reject(new TestFailure(`the whole test took longer than ${limitMs / 1000} s`)),
        limitMs,
      );
      t.unref();
    });
    try {
      await Promise.race([main(), watchdog]);
      info('PASS');
    } catch (err) {
      code = 1;
      await Promise.race([dumpArtifacts(err), sleep(15_000)]);
    }
    await cleanup();
    process.exit(code);
  })();
}

/**
 * The flags every test's Chromium runs with: headless, the fake camera, microphone and
 * screen granted without asking, no background throttling (several pages share one
 * renderer budget), nothing fetched from the network.
 */
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/**
 * Launches `exe` (playwright-core's `chromium`) on a fresh profile directory named after
 * `prefix`, with CHROMIUM_ARGS and `extraArgs`; returns { context, userDataDir }.
 */
async function launchChromium(chromium, { exe, prefix, viewport = { width: 1000, height: 700 }, extraArgs = [] }) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: exe,
    headless: true,
    timeout: 30_000,
    permissions: ['camera', 'microphone'],
    viewport,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
  context.setDefaultTimeout(15_000);
  return { context, userDataDir };
}

/** Closes what launchChromium made (10 s at most) and removes its profile. */
async function closeChromium(context, userDataDir) {
  if (context) {
    try {
      await Promise.race([context.close(), sleep(10_000)]);
    } catch (e) { /* already gone */ }
  }
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}

/** The server under test (`$CHORUS_URL`) and the Chromium binary (`$CHROMIUM`). */
const BASE = (process.env.CHORUS_URL || 'http://127.0.0.1:7880').replace(/\/+$/, '');
const CHROMIUM_EXE = process.env.CHROMIUM || '/usr/bin/chromium';

/** The demo page's own picture of itself (`window.chorus.snapshot()`); null before it loads. */
const snapshot = (p) => p.page.evaluate(() => window.chorus && window.chorus.snapshot());

/**
 * Opens the demo page (`BASE/` + `query`) as `name` in `context` (the context's first,
 * blank page if unused, else a new one), records its console and uncaught errors
 * (`PAGEERROR: …`) in `p.console` and the WebSockets it opens in `p.sockets`, and adds it
 * to `pages`. `extra` goes into the record.
 * Returns the record { name, page, console, sockets, participantId: null, ...extra }.
 */
async function openDemoPage(context, pages, { name, query = '', ...extra }) {
  const unused = context.pages().find((pg) => pg.url() === 'about:blank' && !pages.some((p) => p.page === pg));
  const page = unused || await context.newPage();
  const p = { name, page, console: [], sockets: [], participantId: null, ...extra };
  pages.push(p);
  page.on('websocket', (ws) => p.sockets.push(ws.url()));
  page.on('console', (m) => {
    p.console.push(`${m.type()}: ${m.text()}`);
    if (p.console.length > 2000) p.console.splice(0, 500);
  });
  page.on('pageerror', (e) => p.console.push(`PAGEERROR: ${e.message}`));
  await page.goto(`${BASE}/${query}`, { waitUntil: 'load', timeout: 15_000 });
  return p;
}

/**
 * Fills the demo page's form on `p.page` (loaded) to join `room` as `p.name` (`lobby`:
 * create the room with a lobby; `guest`: join without the admit grant) and presses Join.
 */
async function submitJoinForm(p, room, { lobby = false, guest = false } = {}) {
  await p.page.fill('#room', room);
  await p.page.fill('#name', p.name);
  if (lobby) await p.page.check('#lobby-room');
  if (guest) await p.page.check('#as-guest');
  await p.page.click('#join');
}

/**
 * Waits (20 s) until `p`'s page reports it joined and sets `p.participantId`; fails at
 * once if the page reports an error. Returns the page's snapshot.
 */
async function joined(p) {
  const s = await until(() => `${p.name} reaches state "joined"`, 20_000, async () => {
    const s = await snapshot(p);
    if (s && (s.state === 'failed' || s.errors.length)) fail(`${p.name} could not join: ${s.errors.join(' | ') || s.state}`);
    return s && s.state === 'joined' && s.participantId ? s : null;
  });
  p.participantId = s.participantId;
  return s;
}

/** Joins `room` through the form on `p`'s loaded page and waits until it is in (joined()). */
async function joinThroughForm(p, room, options) {
  await submitJoinForm(p, room, options);
  return joined(p);
}

/** Fails if one of `pages` (Chromium, opened by openDemoPage) threw an uncaught error. */
function failOnPageErrors(pages) {
  for (const p of pages) {
    const errs = p.console.filter((l) => l.startsWith('PAGEERROR'));
    if (errs.length) fail(`${p.name}'s page threw: ${errs.join(' | ')}`);
  }
}

/** Frames `viewer` has shown of `owner`'s camera (null: no such video yet). */
function cameraFrames(viewer, owner) {
  return viewer.page.evaluate((pid) => {
    const tile = document.querySelector(`.tile.remote[data-participant-id="${pid}"]`);
    const v = tile && tile.querySelector('video.camera');
    // Frames shown: a stalled stream's currentTime runs on, this count does not.
    return v && v.videoWidth > 0 ? v.getVideoPlaybackQuality().totalVideoFrames : null;
  }, owner.participantId);
}

/** Waits until `viewer` shows `owner`'s camera and it plays on (`frames` more frames). */
async function cameraPlays(viewer, owner, what, frames = 5) {
  const first = await until(`${what}: a camera video with a size`, 15_000, async () => cameraFrames(viewer, owner));
  await until(`${what}: it plays on`, 10_000, async () => (await cameraFrames(viewer, owner)) >= first + frames);
}

/** Closes `browser` (a FirefoxPage, say), if any, giving it `ms` at most. */
async function closeQuietly(browser, ms = 15_000) {
  if (!browser) return;
  try {
    await Promise.race([browser.close(), sleep(ms)]);
  } catch (e) { /* already gone */ }
}

/**
 * The shared frame of a browser test of the demo page: a log prefixed with `test` and
 * the time since start, the pages, one Chromium (launch(), after the server serves the
 * page), pages joined through the form (open(), join()), and run(), which runs `main`
 * under runTest, saves artifacts on failure (with `state(p)`, snapshot() by default) and
 * closes Chromium and whatever `cleanup` closes.
 */
function demoTest(test) {
  const t0 = Date.now();
  const t = {
    pages: [],
    context: null,
    userDataDir: null,
    info: (...a) => console.log(`[${test} ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a),
    /** Waits for the demo page, then launches Chromium (launchChromium's options). */
    async launch(options = {}) {
      await demoPageServed(BASE);
      const { chromium } = require('playwright-core');
      ({ context: t.context, userDataDir: t.userDataDir } = await launchChromium(chromium, {
        exe: CHROMIUM_EXE, prefix: `chorus-${test}-profile-`, ...options,
      }));
      return t.context;
    },
    /** openDemoPage in this test's Chromium. */
    open: (name, options = {}) => openDemoPage(t.context, t.pages, { name, ...options }),
    /** Opens the page as `name` (with `query`) and joins `room` through its form. */
    async join(name, room, { query = '', ...options } = {}) {
      const p = await t.open(name, { query });
      await joinThroughForm(p, room, options);
      return p;
    },
    run({ main, limitMs, state = snapshot, tail, cleanup = async () => {} }) {
      runTest({
        main,
        limitMs,
        info: t.info,
        dumpArtifacts: (err) => saveArtifacts(err, { test, pages: t.pages, state, tail }),
        cleanup: async () => {
          await cleanup();
          await closeChromium(t.context, t.userDataDir);
        },
      });
    },
  };
  return t;
}

/**
 * What a failed test leaves behind, into $E2E_ARTIFACTS (or a new temp dir named after
 * `test`): per page a screenshot, its console, and `state(p)` when given; the console's
 * last `tail` lines and the state on stderr too. Returns the directory.
 */
async function saveArtifacts(err, { test, pages, prefix = '', state, tail = 30 }) {
  const dir = process.env.E2E_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), `chorus-${test}-`));
  fs.mkdirSync(dir, { recursive: true });
  for (const p of pages) {
    if (!p.page) continue;
    const base = path.join(dir, `${prefix}${p.name}`);
    try {
      await p.page.screenshot({ path: `${base}.png`, timeout: 5000 });
    } catch (e) { /* page may be gone */ }
    fs.writeFileSync(`${base}.console.log`, p.console.join('\n'));
    if (state) {
      let s = null;
      try {
        s = await state(p);
      } catch (e) { /* page may be gone */ }
      fs.writeFileSync(`${base}.state.json`, JSON.stringify(s, null, 2));
      console.error(`---- ${p.name} (${p.participantId || 'not joined'}) state: ${JSON.stringify(s)}`);
    }
    console.error(`---- ${p.name} console (last ${tail} lines):\n${p.console.slice(-tail).join('\n')}`);
  }
  console.error(`FAIL: ${err instanceof TestFailure ? err.message : err.stack || err}`);
  console.error(`screenshots and logs in ${dir}`);
  return dir;
}

module.exports = {
  sleep, TestFailure, fail, until, runTest, demoPageServed,
  CHROMIUM_ARGS, launchChromium, closeChromium, saveArtifacts,
  BASE, CHROMIUM_EXE, snapshot, openDemoPage, submitJoinForm, joined, joinThroughForm,
  failOnPageErrors, cameraFrames, cameraPlays, closeQuietly, demoTest,
};
