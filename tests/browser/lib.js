// Helpers shared by the browser tests: bounded polling and failures that say what failed.
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

/**
 * Joins `room` as `name` through the demo page's form on `page` (already loaded) and
 * waits (20 s) until `snap()` reports it joined; fails at once if the page reports an
 * error. Returns that snapshot.
 */
async function joinThroughForm(page, { room, name, snap }) {
  await page.fill('#room', room);
  await page.fill('#name', name);
  await page.click('#join');
  return until(() => `${name} reaches state "joined"`, 20_000, async () => {
    const s = await snap();
    if (s && (s.state === 'failed' || s.errors.length)) fail(`${name} could not join: ${s.errors.join(' | ') || s.state}`);
    return s && s.state === 'joined' && s.participantId ? s : null;
  });
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
  CHROMIUM_ARGS, launchChromium, closeChromium, joinThroughForm, saveArtifacts,
};
