// Firefox for the browser tests: Debian's firefox-esr driven through geckodriver over W3C
// WebDriver HTTP (plain `fetch`, no client library), behind a small page object with the
// few calls of a Playwright page the tests use (goto, fill, click, evaluate, $, $eval,
// $$eval, isVisible, screenshot).
//
//   FIREFOX      browser binary (default /usr/bin/firefox-esr)
//   GECKODRIVER  geckodriver binary (default: on PATH, else ~/.cargo/bin/geckodriver)
//
// Run it inside the loopback-only namespace of the test: geckodriver and Firefox must
// share it with the server (scripts/browser-test.sh re-executes itself in `unshare -n`).
'use strict';

const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { sleep, fail } = require('./lib');

const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';

/**
 * What Firefox needs inside a namespace that has only `lo` (see /work/shared/peers):
 * fake camera and microphone, ICE on loopback, and camera/microphone granted up front
 * (without that, Firefox gathers only the default route's address, and there is none).
 */
const PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.peerconnection.ice.loopback': true,
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
  'media.autoplay.default': 0, // allow audible autoplay: the page plays remote audio unprompted
  'media.autoplay.blocking_policy': 0,
  'devtools.console.stdout.content': true, // page console on stdout, which we collect
  'browser.shell.checkDefaultBrowser': false,
  'app.update.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
};

function executable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch (e) {
    return false;
  }
}

function findGeckodriver() {
  if (process.env.GECKODRIVER) return process.env.GECKODRIVER;
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  dirs.push(path.join(os.homedir(), '.cargo', 'bin'));
  for (const d of dirs) if (executable(path.join(d, 'geckodriver'))) return path.join(d, 'geckodriver');
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** One Firefox with one page, driven through a geckodriver of its own. */
class FirefoxPage {
  constructor() {
    this.proc = null;
    this.base = null;
    this.sessionId = null;
    this.output = []; // geckodriver's and Firefox's output (incl. the page console)
    this.exited = null;
    this.dir = null;
    this.version = null;
  }

  /** Starts geckodriver and a headless Firefox; fails with a clear message when it cannot. */
  static async launch({ timeoutMs = 45_000 } = {}) {
    const ff = new FirefoxPage();
    if (!executable(FIREFOX)) fail(`Firefox not found at ${FIREFOX} (FIREFOX=...): run scripts/setup.sh (installs firefox-esr)`);
    const gd = findGeckodriver();
    if (!gd) fail('geckodriver not found on PATH nor in ~/.cargo/bin (GECKODRIVER=...): run scripts/setup.sh (cargo install geckodriver --locked)');
    // A writable HOME and TMPDIR of our own: Firefox writes its profile and caches there.
    ff.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-firefox-'));
    const port = await freePort();
    ff.base = `http://127.0.0.1:${port}`;
    ff.proc = spawn(gd, ['--host', '127.0.0.1', '--port', String(port), '--log', 'warn'], {
      env: { ...process.env, HOME: ff.dir, TMPDIR: ff.dir, MOZ_HEADLESS: '1', MOZ_CRASHREPORTER_DISABLE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (buf) => {
      for (const line of buf.toString().split('\n')) if (line.trim()) ff.output.push(line);
      if (ff.output.length > 3000) ff.output.splice(0, 1000);
    };
    ff.proc.stdout.on('data', collect);
    ff.proc.stderr.on('data', collect);
    ff.proc.on('error', (e) => { ff.exited = `could not start ${gd}: ${e.message}`; });
    ff.proc.on('exit', (code, sig) => { ff.exited = ff.exited || `geckodriver exited (${sig || code})`; });
    // Never leave geckodriver behind, even when the test exits without close().
    process.on('exit', () => { if (ff.proc.exitCode === null) ff.proc.kill('SIGKILL'); });

    const deadline = Date.now() + timeoutMs;
    const whyNot = (what) => `${what}; geckodriver/Firefox output:\n${ff.output.slice(-30).join('\n') || '(none)'}`;
    // geckodriver up?
    for (;;) {
      if (ff.exited) fail(whyNot(`Firefox: ${ff.exited}`));
      try {
        const r = await fetch(`${ff.base}/status`);
        if (r.ok) break;
      } catch (e) { /* not listening yet */ }
      if (Date.now() > deadline) fail(whyNot(`Firefox: geckodriver did not answer on ${ff.base} within ${timeoutMs} ms`));
      await sleep(100);
    }
    // A session starts Firefox.
    let res;
    try {
      res = await ff.cmd('POST', '/session', {
        capabilities: {
          alwaysMatch: {
            browserName: 'firefox',
            'moz:firefoxOptions': { binary: FIREFOX, args: ['-headless'], prefs: PREFS },
          },
        },
      }, Math.max(1000, deadline - Date.now()));
    } catch (e) {
      await ff.close();
      fail(whyNot(`Firefox (${FIREFOX}) did not start: ${e.message}`));
    }
    ff.sessionId = res.sessionId;
    const caps = res.capabilities || {};
    ff.version = `${caps.browserName || 'firefox'} ${caps.browserVersion || '?'}`;
    await ff.cmd('POST', `/session/${ff.sessionId}/timeouts`, { script: 20_000, pageLoad: 20_000, implicit: 0 });
    await ff.cmd('POST', `/session/${ff.sessionId}/window/rect`, { width: 1000, height: 700 }).catch(() => {});
    return ff;
  }

  /** One WebDriver command; throws with WebDriver's error message. */
  async cmd(method, url, body, timeoutMs = 30_000) {
    if (this.exited) throw new Error(`Firefox is gone: ${this.exited}`);
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), timeoutMs);
    let r;
    try {
      r = await fetch(`${this.base}${url}`, {
        method,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ac.signal,
      });
    } catch (e) {
      throw new Error(`WebDriver ${method} ${url}: ${ac.signal.aborted ? `no answer in ${timeoutMs} ms` : e.message}`);
    } finally {
      clearTimeout(t);
    }
    const j = await r.json().catch(() => ({}));
    const v = j.value;
    if (!r.ok || (v && v.error)) {
      throw new Error(`WebDriver ${method} ${url}: ${(v && (v.error + ': ' + v.message)) || `HTTP ${r.status}`}`);
    }
    return v;
  }

  s(url) {
    return `/session/${this.sessionId}${url}`;
  }

  goto(url) {
    return this.cmd('POST', this.s('/url'), { url });
  }

  /**
   * Runs `fn(arg)` in the page like Playwright's `evaluate`: `fn` travels as source text,
   * `arg` and the result as JSON; a returned promise is awaited.
   */
  async evaluate(fn, arg) {
    const script = `const done = arguments[arguments.length - 1]; const arg = arguments[0];
      Promise.resolve().then(() => (${fn.toString()})(arg)).then(
        (v) => done({ ok: true, v: v === undefined ? null : v }),
        (e) => done({ ok: false, e: String((e && e.message) || e) }));`;
    const r = await this.cmd('POST', this.s('/execute/async'), { script, args: [arg === undefined ? null : arg] });
    if (!r || !r.ok) throw new Error(`in Firefox's page: ${r ? r.e : 'no result'}`);
    return r.v;
  }

  $eval(sel, fn, arg) {
    return this.evaluate(`(a) => { const el = document.querySelector(a.sel);
      if (!el) throw new Error('no element matches ' + a.sel); return (${fn.toString()})(el, a.arg); }`, { sel, arg });
  }

  $$eval(sel, fn, arg) {
    return this.evaluate(`(a) => (${fn.toString()})(Array.from(document.querySelectorAll(a.sel)), a.arg)`, { sel, arg });
  }

  /** Whether something matches `sel` (true or null; the tests only test it). */
  async $(sel) {
    return (await this.evaluate((s) => !!document.querySelector(s), sel)) || null;
  }

  isVisible(sel) {
    return this.evaluate((s) => {
      const el = document.querySelector(s);
      if (!el) return false;
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
    }, sel);
  }

  async element(sel) {
    const v = await this.cmd('POST', this.s('/element'), { using: 'css selector', value: sel });
    return Object.values(v)[0];
  }

  async click(sel) {
    await this.cmd('POST', this.s(`/element/${await this.element(sel)}/click`), {});
  }

  async fill(sel, text) {
    const id = await this.element(sel);
    await this.cmd('POST', this.s(`/element/${id}/clear`), {});
    await this.cmd('POST', this.s(`/element/${id}/value`), { text });
  }

  async screenshot({ path: file }) {
    const b64 = await this.cmd('GET', this.s('/screenshot'));
    fs.writeFileSync(file, Buffer.from(b64, 'base64'));
  }

  /** Ends the session (Firefox quits), stops geckodriver, removes the temp dir. Bounded. */
  async close() {
    if (this.sessionId && !this.exited) {
      await this.cmd('DELETE', `/session/${this.sessionId}`, undefined, 10_000).catch(() => {});
    }
    this.sessionId = null;
    if (this.proc && this.proc.exitCode === null && !this.proc.killed) {
      this.proc.kill('SIGTERM');
      for (let i = 0; i < 30 && this.proc.exitCode === null && this.proc.signalCode === null; i++) await sleep(100);
      if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    }
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

module.exports = { FirefoxPage, FIREFOX, PREFS };
