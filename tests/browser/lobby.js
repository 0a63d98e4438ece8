#!/usr/bin/env node
// Browser test of the lobby on the demo page: three headless Chromium pages. The host
// joins with "room with a lobby" (the demo token has can_admit); a guest ("join as a
// guest") waits in the lobby, sees the room's name and count and no call; the host sees
// it in the lobby list and presses Admit: the guest joins and decodes the host's camera.
// A second guest is rejected: its page says it was not let in, and the host's list
// empties.
//
//   CHORUS_URL    server base URL (default http://127.0.0.1:7880)
//   CHROMIUM      browser binary (default /usr/bin/chromium)
//   E2E_ARTIFACTS directory for screenshots and logs on failure (default: a new temp dir)
//
// Run inside a private network namespace (scripts/browser-test.sh lobby does that).
'use strict';

const { chromium } = require('playwright-core');
const { fail, until, runTest, demoPageServed, launchChromium, closeChromium, saveArtifacts } = require('./lib');

const BASE = (process.env.CHORUS_URL || 'http://127.0.0.1:7880').replace(/\/+$/, '');
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const WHOLE_TEST_MS = 90_000;

const t0 = Date.now();
const pages = []; // { name, page, console: [] }
let context = null;
let userDataDir = null;

function info(...a) {
  console.log(`[lobby ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
}

const snap = (p) => p.page.evaluate(() => window.chorus && window.chorus.snapshot());

/** What the page shows of the lobby: its own wait, and the list of those waiting. */
function lobbyView(p) {
  return p.page.evaluate(() => ({
    waiting: !document.querySelector('[data-testid="lobby-panel"]').hidden,
    text: document.querySelector('[data-testid="lobby-text"]').textContent,
    callShown: document.querySelector('[data-testid="call"]').classList.contains('shown'),
    list: [...document.querySelectorAll('[data-testid="lobby-item"]')].map((li) => li.textContent),
    error: document.querySelector('[data-testid="error"]').textContent,
  }));
}

async function open(name, room, { lobby = false, guest = false } = {}) {
  const page = pages.length === 0 && context.pages()[0] ? context.pages()[0] : await context.newPage();
  const p = { name, page, console: [] };
  page.on('console', (m) => p.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => p.console.push(`PAGEERROR: ${e.message}`));
  pages.push(p);
  await page.goto(`${BASE}/`, { waitUntil: 'load' });
  await page.fill('#room', room);
  await page.fill('#name', name);
  if (lobby) await page.check('#lobby-room');
  if (guest) await page.check('#as-guest');
  await page.click('#join');
  return p;
}

async function joined(p) {
  return until(`${p.name} joins`, 20_000, async () => {
    const s = await snap(p);
    if (s && (s.state === 'failed' || s.errors.length)) fail(`${p.name} could not join: ${s.errors.join(' | ')}`);
    return s && s.state === 'joined' && s.participantId ? s : null;
  });
}

async function main() {
  await demoPageServed(BASE);
  ({ context, userDataDir } = await launchChromium(chromium, { exe: EXE, prefix: 'chorus-lobby-profile-' }));
  const room = `lobby-${Date.now().toString(36)}`;
  const host = await open('Host', room, { lobby: true });
  const hostState = await joined(host);
  info('the host is in the room');

  const guest = await open('Guest', room, { guest: true });
  const waiting = await until('the guest waits in the lobby', 15_000, async () => {
    const v = await lobbyView(guest);
    return v.waiting ? v : null;
  });
  if (!waiting.text.includes(room) || !waiting.text.includes('1 in the room')) fail(`lobby text: ${waiting.text}`);
  if (waiting.callShown) fail('the waiting guest sees the call');
  const gs = await snap(guest);
  if (gs.roster.length) fail(`the waiting guest has a roster: ${JSON.stringify(gs.roster)}`);
  info(`guest: "${waiting.text}"`);

  await until('the host sees the guest waiting', 10_000, async () => {
    const v = await lobbyView(host);
    return v.list.length === 1 && v.list[0].includes('Guest');
  });
  await host.page.click('[data-testid="lobby-item"] [data-testid="admit-button"]');
  await joined(guest);
  await until('the guest decodes the host\'s camera', 20_000, async () => guest.page.evaluate((pid) => {
    const v = document.querySelector(`.tile.remote[data-participant-id="${pid}"] video.camera`);
    return v && v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
  }, hostState.participantId));
  if ((await lobbyView(host)).list.length) fail('the admitted guest is still listed');
  info('admitted: the guest is in the call and sees the host');

  const late = await open('Late', room, { guest: true });
  await until('the host sees Late waiting', 15_000, async () => (await lobbyView(host)).list.some((t) => t.includes('Late')));
  await host.page.click('[data-testid="lobby-item"] [data-testid="reject-button"]');
  await until('Late is told it was not let in', 10_000, async () => {
    const v = await lobbyView(late);
    return !v.waiting && v.error.includes('not let in from the lobby');
  });
  await until("the host's lobby list empties", 5_000, async () => (await lobbyView(host)).list.length === 0);
  info('rejected: Late was told, the list is empty');

  for (const p of pages) {
    const errs = p.console.filter((l) => l.startsWith('PAGEERROR'));
    if (errs.length) fail(`${p.name}'s page threw: ${errs.join(' | ')}`);
  }
}

async function dumpArtifacts(err) {
  await saveArtifacts(err, { test: 'lobby', pages, state: snap });
}

async function cleanup() {
  await closeChromium(context, userDataDir);
}

runTest({ main, limitMs: WHOLE_TEST_MS, info, dumpArtifacts, cleanup });
