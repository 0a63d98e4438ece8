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

const { fail, until, snapshot, submitJoinForm, joined, cameraPlays, failOnPageErrors, demoTest } = require('./lib');

const WHOLE_TEST_MS = 90_000;
const t = demoTest('lobby');
const { info } = t;

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

/** Opens the page as `name` and presses Join (into a lobby, maybe: no wait). */
async function open(name, room, options) {
  const p = await t.open(name);
  await submitJoinForm(p, room, options);
  return p;
}

async function main() {
  await t.launch();
  const room = `lobby-${Date.now().toString(36)}`;
  const host = await open('Host', room, { lobby: true });
  await joined(host);
  info('the host is in the room');

  const guest = await open('Guest', room, { guest: true });
  const waiting = await until('the guest waits in the lobby', 15_000, async () => {
    const v = await lobbyView(guest);
    return v.waiting ? v : null;
  });
  if (!waiting.text.includes(room) || !waiting.text.includes('1 in the room')) fail(`lobby text: ${waiting.text}`);
  if (waiting.callShown) fail('the waiting guest sees the call');
  const gs = await snapshot(guest);
  if (gs.roster.length) fail(`the waiting guest has a roster: ${JSON.stringify(gs.roster)}`);
  info(`guest: "${waiting.text}"`);

  await until('the host sees the guest waiting', 10_000, async () => {
    const v = await lobbyView(host);
    return v.list.length === 1 && v.list[0].includes('Guest');
  });
  await host.page.click('[data-testid="lobby-item"] [data-testid="admit-button"]');
  await joined(guest);
  await cameraPlays(guest, host, "the guest decodes the host's camera");
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

  failOnPageErrors(t.pages);
}

t.run({ main, limitMs: WHOLE_TEST_MS });
