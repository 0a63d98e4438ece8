#!/usr/bin/env node
// Browser test: a Chromium page that may only use TURN relays reaches Chorus through coturn.
//
// Two pages of one headless Chromium join one fresh room through the demo page:
//   - Ann opens the page with `?relay=1`: her connections use `iceTransportPolicy:
//     'relay'`, so every packet she sends or receives passes the coturn that
//     scripts/browser-test.sh turn-relay started (deploy/coturn/turnserver.conf with
//     loopback overrides), with the TURN REST credential Chorus put in `joined.ice_servers`;
//   - Bob is a plain page (direct UDP to Chorus).
// Checked:
//   - Ann's `joined` carries ice_servers: the configured URL and a `<expiry>:<identity>`
//     username, with an expiry in the future;
//   - both of Ann's connections gathered only relay candidates and their selected candidate
//     pair is relay → Chorus's media address (getStats);
//   - media flows both ways: each decodes the other's video (≥ 5 frames in 3 s) and
//     receives and decodes the room audio;
//   - coturn really relayed: its log shows successful allocations and permissions for
//     Ann's username, and when she leaves, the bytes each allocation relayed both ways.
//
// Environment (scripts/browser-test.sh turn-relay sets these):
//   CHORUS_URL   server base URL (default http://127.0.0.1:7880)
//   CHROMIUM     browser binary (default /usr/bin/chromium)
//   TURN_URL     the TURN URL Chorus hands out (turn:127.0.0.1:3478?transport=udp)
//   TURN_LOG     coturn's log file
//   E2E_ARTIFACTS directory for screenshots and logs on failure (default: a new temp dir)
//
// Exit code 0 on success, 1 on failure.
'use strict';

const fs = require('fs');
const { sleep, fail, until, snapshot: snap, joinThroughForm, failOnPageErrors, demoTest } = require('./lib');

const TURN_URL = process.env.TURN_URL || 'turn:127.0.0.1:3478?transport=udp';
const TURN_LOG = process.env.TURN_LOG || '';
const WHOLE_TEST_MS = 75_000;
const MEASURE_MS = 3000;

const t = demoTest('turn-relay');
const { info, pages } = t;

const stats = (p) => p.page.evaluate(() => window.chorus.inboundStats());
const transports = (p) => p.page.evaluate(() => window.chorus.transportStats());

/** Opens the page as `name` (`relay`: relay only, `?relay=1`) and joins `room`. */
async function join(name, relay, room) {
  const p = await t.open(name, { query: relay ? '?relay=1' : '', relay });
  await joinThroughForm(p, room);
  info(`${name} joined as ${p.participantId}${relay ? ' (relay only)' : ''}`);
  return p;
}

/** Ann's `joined.ice_servers`, checked: the configured URL and a fresh REST credential. */
async function checkIceServers(p) {
  const joined = await p.page.evaluate(() => window.chorus.events.find((m) => m.type === 'joined') || null);
  const servers = joined && joined.ice_servers;
  if (!Array.isArray(servers) || servers.length !== 1) fail(`${p.name}'s joined has no ice_servers: ${JSON.stringify(joined)}`);
  const [s] = servers;
  if (!s.urls.includes(TURN_URL)) fail(`ice_servers names ${JSON.stringify(s.urls)}, not ${TURN_URL}`);
  const m = /^(\d+):(.+)$/.exec(s.username || '');
  if (!m) fail(`the TURN username "${s.username}" is not <expiry>:<identity>`);
  if (m[2] !== joined.participant.identity) fail(`the TURN username names ${m[2]}, not the identity ${joined.participant.identity}`);
  if (Number(m[1]) <= Date.now() / 1000) fail(`the TURN credential expired already (${m[1]})`);
  if (!s.credential) fail('ice_servers has no credential');
  info(`${p.name}'s ice_servers: ${s.urls.join(', ')} as ${s.username}`);
  return s.username;
}

/** Both of the relayed page's connections: relay candidates only, a relay pair selected. */
async function checkRelayed(p) {
  const t = await transports(p);
  const remotes = [];
  for (const target of ['publisher', 'subscriber']) {
    const c = t[target];
    if (!c || !c.local) fail(`${p.name}'s ${target} connection has no selected candidate pair: ${JSON.stringify(c)}`);
    if (c.local.type !== 'relay') fail(`${p.name}'s ${target} connection uses a ${c.local.type} candidate (${c.local.address}:${c.local.port}), not a relay`);
    const direct = c.localCandidates.filter((x) => x.type !== 'relay');
    if (direct.length) fail(`${p.name} gathered non-relay candidates on ${target} despite iceTransportPolicy 'relay': ${JSON.stringify(direct)}`);
    info(`${p.name} ${target}: selected pair relay ${c.local.address}:${c.local.port} -> ${c.remote.type} ${c.remote.address}:${c.remote.port}`);
    remotes.push(`${c.remote.address}:${c.remote.port}`);
  }
  return remotes;
}

function turnLog() {
  try {
    return fs.readFileSync(TURN_LOG, 'utf8');
  } catch (e) {
    fail(`cannot read coturn's log at "${TURN_LOG}": ${e.message}`);
  }
  return '';
}

async function main() {
  if (!TURN_LOG) fail('TURN_LOG is not set: run this through `scripts/browser-test.sh turn-relay`');
  await t.launch({ viewport: { width: 900, height: 640 } });

  const room = `turn-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
  info(`room ${room}`);
  const ann = await join('Ann', true, room);
  const bob = await join('Bob', false, room);
  const username = await checkIceServers(ann);

  for (const [p, o] of [[ann, bob], [bob, ann]]) {
    await until(() => `${p.name} decodes video from ${o.name} (last stats: ${JSON.stringify(p.lastStats || null)}; ` +
        `transports: ${JSON.stringify(p.lastTransports || null)}; page: ${JSON.stringify(p.lastSnap || null)})`, 30_000, async () => {
      p.lastSnap = await snap(p);
      p.lastTransports = await transports(p);
      p.lastStats = await stats(p);
      return ((p.lastStats.byParticipant[o.participantId] || {}).video || {}).framesDecoded > 0;
    }, 500);
  }
  info('both decode each other');

  const remotes = await checkRelayed(ann);
  const bobT = await transports(bob);
  info(`Bob subscriber: selected pair ${bobT.subscriber.local.type} ${bobT.subscriber.local.address}:${bobT.subscriber.local.port} -> ${bobT.subscriber.remote.address}:${bobT.subscriber.remote.port}`);

  // Media both ways over the relayed connections: video frames and the room audio.
  const before = await Promise.all(pages.map(stats));
  await sleep(MEASURE_MS);
  const after = await Promise.all(pages.map(stats));
  pages.forEach((p, i) => {
    const o = pages[1 - i];
    const vb = (before[i].byParticipant[o.participantId] || {}).video || {};
    const va = (after[i].byParticipant[o.participantId] || {}).video || {};
    const frames = (va.framesDecoded || 0) - (vb.framesDecoded || 0);
    info(`${p.name} <- ${o.name}: ${frames} video frames decoded in ${MEASURE_MS} ms, ${va.frameWidth}x${va.frameHeight}`);
    if (frames < 5) fail(`${p.name} decoded only ${frames} video frames from ${o.name} in ${MEASURE_MS} ms (before ${JSON.stringify(vb)}, after ${JSON.stringify(va)})`);
    // With two participants the room audio relays the other's microphone (the `mix` track).
    const ab = before[i].unmapped.audio || (before[i].byParticipant[o.participantId] || {}).audio || {};
    const aa = after[i].unmapped.audio || (after[i].byParticipant[o.participantId] || {}).audio;
    if (!aa) fail(`${p.name} receives no audio track (stats: ${JSON.stringify(after[i])})`);
    const pkts = (aa.packetsReceived || 0) - (ab.packetsReceived || 0);
    const samples = (aa.totalSamplesReceived || 0) - (ab.totalSamplesReceived || 0);
    info(`${p.name} <- ${o.name}: ${pkts} audio packets, ${samples} samples`);
    if (pkts <= 0 || samples <= 0) fail(`${p.name} received ${pkts} audio packets and decoded ${samples} samples from ${o.name} in ${MEASURE_MS} ms`);
  });

  // coturn's side: allocations for Ann's credential succeeded (so coturn accepted the
  // credential Chorus made), ...
  const lines = () => turnLog().split('\n');
  const processed = (what) => lines().filter((l) => l.includes(`user <${username}>: incoming packet ${what} processed, success`));
  const allocated = processed('ALLOCATE');
  if (!allocated.length) {
    fail(`coturn's log (${TURN_LOG}) shows no successful ALLOCATE for ${username}:\n${lines().slice(-40).join('\n')}`);
  }
  const permitted = processed('CREATE_PERMISSION');
  if (!permitted.length) fail(`coturn's log shows no permission for ${username} to reach Chorus at ${remotes[0]}`);
  info(`coturn: ${allocated.length} allocation(s), ${permitted.length} permission(s) for ${username}`);

  // ... and the media went through it: when Ann leaves, Chromium releases her
  // allocations and coturn logs what each relayed, both towards Ann and towards Chorus.
  await ann.page.click('#leave');
  const usage = (peer) => new RegExp(`session \\d+: ${peer ? 'peer ' : ''}usage: realm=<[^>]*>, username=<${username.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>, rp=(\\d+), rb=(\\d+), sp=(\\d+), sb=(\\d+)`);
  const sums = (re) => lines().map((l) => re.exec(l)).filter(Boolean)
    .reduce((acc, m) => ({ sessions: acc.sessions + 1, rb: acc.rb + Number(m[2]), sb: acc.sb + Number(m[4]) }), { sessions: 0, rb: 0, sb: 0 });
  const closed = await until(() => `coturn logs the usage of Ann's ${allocated.length} allocation(s) after she left ` +
      `(log tail:\n${lines().slice(-20).join('\n')})`, 15_000, () => {
    const client = sums(usage(false));
    return client.sessions >= allocated.length ? { client, peer: sums(usage(true)) } : null;
  }, 250);
  info(`coturn relayed for Ann: received ${closed.client.rb} bytes from her and sent ${closed.client.sb} to her; ` +
    `sent ${closed.peer.sb} bytes to Chorus and received ${closed.peer.rb} from it`);
  const MIN_BYTES = 50_000; // seconds of 640x480 video each way
  for (const [what, bytes] of [['from Ann', closed.client.rb], ['to Ann', closed.client.sb], ['to Chorus', closed.peer.sb], ['from Chorus', closed.peer.rb]]) {
    if (bytes < MIN_BYTES) fail(`coturn relayed only ${bytes} bytes ${what}`);
  }

  failOnPageErrors(pages);
}

t.run({
  main,
  limitMs: WHOLE_TEST_MS,
  state: async (p) => ({ snapshot: await snap(p), transports: await transports(p) }),
});
