#!/usr/bin/env node
// Browser test: Chromium switches the nominated ICE candidate pair in the middle of a call.
//
// Two Chromium browsers, one page each, join one fresh room through the demo page:
//   - Ann has two network interfaces with addresses of their own (like a laptop's
//     Ethernet and Wi-Fi), so Chromium gathers two host candidates and has two working
//     candidate pairs to the server's single candidate;
//   - Bob is plain: one candidate on 127.0.0.1 (the profile pref
//     webrtc.ip_handling_policy=default_public_interface_only plus the namespace's
//     default route through lo), so nothing done to Ann's interfaces touches him.
// Both publish camera and microphone. Once both decode each other, the test makes
// Chromium switch Ann's nominated pair: it drops every packet *to* the local address of
// Ann's selected pair (a tc filter on lo, where all of this traffic flows), so that pair
// stops receiving while Ann's packets from it still reach the server. Chromium notices
// within about 3 s and nominates the pair on her other interface (USE-CANDIDATE from the
// new address). Later it lifts that drop and drops the new address instead, and Chromium
// switches back. The server has to follow each nomination.
//
// Checked, from getStats() and the pages' own records:
//   - Chromium really switched (the selected candidate pair's local address of Ann's
//     transports changed) within PHASE_SWITCH_MS of each drop; otherwise the test fails;
//   - Ann keeps decoding Bob's video (framesDecoded rises again within RECOVER_MS of each
//     switch, and never stalls longer than MAX_STALL_MS otherwise) and Bob keeps decoding
//     Ann's video (never stalls longer than MAX_STALL_MS), for OBSERVE_MS after the first
//     switch;
//   - neither page ever shows the other as `disconnected` (participant_state events, the
//     tile), nobody leaves, no `media_unreachable` arrives, and no ICE restart was needed.
//
// Environment (scripts/browser-test.sh pair-switch sets up the namespace and these):
//   CHORUS_URL          server base URL (default http://127.0.0.1:7880)
//   CHROMIUM            browser binary (default /usr/bin/chromium)
//   PAIR_SWITCH_ADDRS   Ann's two interface addresses, space separated
//   PAIR_SWITCH_DEV     the device whose root qdisc is `htb` 1: with a dropping class
//                       1:20 (pfifo limit 0), default lo
//   E2E_ARTIFACTS       directory for screenshots, logs and the sampled timeline on
//                       failure (default: a new temp dir); when set, also on success
//
// Exit code 0 on success, 1 on failure. It changes tc filters, so it only runs inside
// the private network namespace of scripts/browser-test.sh (CHORUS_IN_NETNS=1).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { chromium } = require('playwright-core');

const BASE = (process.env.CHORUS_URL || 'http://127.0.0.1:7880').replace(/\/+$/, '');
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const ADDRS = (process.env.PAIR_SWITCH_ADDRS || '').split(/[\s,]+/).filter(Boolean);
const DEV = process.env.PAIR_SWITCH_DEV || 'lo';

const WHOLE_TEST_MS = 85_000;
/** How long Chromium gets to switch after the path of its selected pair went dark. */
const PHASE_SWITCH_MS = 15_000;
/** Time after a switch within which Ann must decode Bob's video again. */
const RECOVER_MS = 8_000;
/** Longest time without a newly decoded frame outside the allowances above. */
const MAX_STALL_MS = 4_000;
/** How long the call is watched after the first switch. */
const OBSERVE_MS = 30_000;
/** When, after the first switch, the drop moves to the other address (switch back). */
const SECOND_SWITCH_AFTER_MS = 10_000;
/** The call is watched at least this long after the second switch. */
const MIN_AFTER_SECOND_MS = 12_000;
const SAMPLE_MS = 500;

const t0 = Date.now();
const pages = []; // { name, page, context, userDataDir, console: [], participantId }
const timeline = []; // samples
const phases = []; // { addr, blockedAt, switchedAt, moved: [target], from, to }
const filters = new Set(); // tc filter prios currently installed
let sampler = null;

function elapsed(at = Date.now()) {
  return `${((at - t0) / 1000).toFixed(1)}s`;
}
function info(...a) {
  console.log(`[pair-switch ${elapsed()}]`, ...a);
}
const {
  sleep, TestFailure, fail, until, runTest, demoPageServed, saveArtifacts, CHROMIUM_ARGS, joinThroughForm,
  snapshot: snap,
} = require('./lib');

const inbound = (p) => p.page.evaluate(() => window.chorus.inboundStats());
const transports = (p) => p.page.evaluate(() => window.chorus.transportStats());

// ---------------------------------------------------------------- the network fault

function tc(args) {
  return execFileSync('tc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function checkNetwork() {
  if (process.env.CHORUS_IN_NETNS !== '1') {
    fail('pair-switch.js changes tc filters: run it through `scripts/browser-test.sh pair-switch`, ' +
      'which gives it a private network namespace (CHORUS_IN_NETNS=1)');
  }
  if (ADDRS.length !== 2) fail(`PAIR_SWITCH_ADDRS must name two addresses, got "${process.env.PAIR_SWITCH_ADDRS || ''}"`);
  const have = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
  for (const a of ADDRS) {
    if (!have.includes(` ${a}/`)) fail(`no interface carries ${a} in this namespace:\n${have}`);
  }
  let classes = '';
  try { classes = tc(['class', 'show', 'dev', DEV]); } catch (e) { /* reported below */ }
  if (!/class htb 1:20 /.test(classes)) {
    fail(`${DEV} has no htb class 1:20 to drop packets with (tc class show dev ${DEV}: ${classes.trim() || 'nothing'})`);
  }
}

/** Drops every IPv4 packet to `addr` on DEV (through the class whose queue holds nothing). */
function dropTo(addr, prio) {
  tc(['filter', 'add', 'dev', DEV, 'parent', '1:', 'protocol', 'ip', 'prio', String(prio),
    'u32', 'match', 'ip', 'dst', `${addr}/32`, 'flowid', '1:20']);
  filters.add(prio);
  info(`dropping every packet to ${addr} (tc filter prio ${prio} on ${DEV})`);
}

function stopDropping(prio) {
  try {
    tc(['filter', 'del', 'dev', DEV, 'parent', '1:', 'protocol', 'ip', 'prio', String(prio)]);
  } catch (e) {
    info(`could not remove tc filter prio ${prio}: ${e.message}`);
  }
  filters.delete(prio);
}

function droppedPackets() {
  try {
    const out = tc(['-s', 'class', 'show', 'dev', DEV, 'classid', '1:20']);
    const m = /dropped (\d+)/.exec(out);
    return m ? Number(m[1]) : null;
  } catch (e) {
    return null;
  }
}

// ---------------------------------------------------------------- browsers

// Without --allow-loopback-in-peer-connection: openPage adds it for the plain page only.
const COMMON_ARGS = CHROMIUM_ARGS.filter((a) => a !== '--allow-loopback-in-peer-connection');

/**
 * One browser per page: the two need different network settings. `plain`: loopback
 * allowed, and only the default route's address (127.0.0.1 here) is used.
 */
async function openPage(name, plain) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `chorus-pair-switch-${name.toLowerCase()}-`));
  if (plain) {
    fs.mkdirSync(path.join(userDataDir, 'Default'), { recursive: true });
    fs.writeFileSync(path.join(userDataDir, 'Default', 'Preferences'),
      JSON.stringify({ webrtc: { ip_handling_policy: 'default_public_interface_only' } }));
  }
  const p = { name, page: null, context: null, userDataDir, console: [], participantId: null };
  pages.push(p);
  p.context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: EXE,
    headless: true,
    timeout: 30_000,
    permissions: ['camera', 'microphone'],
    viewport: { width: 900, height: 640 },
    // Ann without --allow-loopback-in-peer-connection: she uses her two interfaces only.
    args: plain ? [...COMMON_ARGS, '--allow-loopback-in-peer-connection'] : COMMON_ARGS,
  });
  p.context.setDefaultTimeout(15_000);
  p.page = p.context.pages()[0] || await p.context.newPage();
  p.page.on('console', (m) => {
    p.console.push(`${elapsed()} ${m.type()}: ${m.text()}`);
    if (p.console.length > 3000) p.console.splice(0, 1000);
  });
  p.page.on('pageerror', (e) => p.console.push(`${elapsed()} PAGEERROR: ${e.message}`));
  return p;
}

async function join(p, room) {
  // A network change while the page loads (Chromium noticing an interface come up)
  // fails its modules with ERR_NETWORK_CHANGED: load it again, a few times at most.
  for (let attempt = 1; ; attempt++) {
    await p.page.goto(`${BASE}/`, { waitUntil: 'load', timeout: 15_000 });
    if (await p.page.evaluate(() => typeof window.chorus === 'object' && window.chorus !== null)) break;
    if (attempt === 3) fail(`${p.name}'s demo page did not start in ${attempt} loads`);
    info(`${p.name}'s demo page did not start (load ${attempt}); loading it again`);
    await sleep(1000);
  }
  await joinThroughForm(p, room);
  info(`${p.name} joined as ${p.participantId}`);
}

// ---------------------------------------------------------------- sampling

function framesFrom(st, other) {
  return ((st.byParticipant[other.participantId] || {}).video || {}).framesDecoded || 0;
}

/** One look at both pages; problems that must never happen fail the test at once. */
async function sample(ann, bob) {
  const at = Date.now();
  const [annT, annIn, bobIn, annS, bobS] = await Promise.all([
    transports(ann), inbound(ann), inbound(bob), snap(ann), snap(bob),
  ]);
  const tileState = async (p, other) => p.page.$eval(`.tile[data-participant-id="${other.participantId}"]`,
    (t) => t.dataset.state).catch(() => null);
  const [annSeesBob, bobSeesAnn] = await Promise.all([tileState(ann, bob), tileState(bob, ann)]);
  const s = {
    at,
    t: elapsed(at),
    ann: {
      pub: annT.publisher && annT.publisher.local ? `${annT.publisher.local.address}:${annT.publisher.local.port}` : null,
      sub: annT.subscriber && annT.subscriber.local ? `${annT.subscriber.local.address}:${annT.subscriber.local.port}` : null,
      pubAddr: annT.publisher && annT.publisher.local ? annT.publisher.local.address : null,
      subAddr: annT.subscriber && annT.subscriber.local ? annT.subscriber.local.address : null,
      pubIce: annT.publisher ? annT.publisher.ice : null,
      subIce: annT.subscriber ? annT.subscriber.ice : null,
      changes: [annT.publisher ? annT.publisher.changes : 0, annT.subscriber ? annT.subscriber.changes : 0],
      framesFromBob: framesFrom(annIn, bob),
      tileOfBob: annSeesBob,
      state: annS.state,
    },
    bob: {
      framesFromAnn: framesFrom(bobIn, ann),
      tileOfAnn: bobSeesAnn,
      state: bobS.state,
    },
  };
  timeline.push(s);
  if (timeline.length > 1000) timeline.splice(0, 200);

  for (const [p, ps, other, tile] of [[ann, annS, bob, annSeesBob], [bob, bobS, ann, bobSeesAnn]]) {
    if (ps.state !== 'joined') fail(`${p.name}'s page is no longer in the room (state ${ps.state}, left reason ${ps.leftReason}, errors: ${ps.errors.join(' | ')})`);
    const r = ps.roster.find((x) => x.participant_id === other.participantId);
    if (!r) fail(`${p.name} no longer lists ${other.name} in the roster`);
    if (r.state === 'disconnected' || tile === 'disconnected') fail(`${p.name}'s page shows ${other.name} as disconnected (${phaseText(at)})${mediaSummary()}`);
  }
  return s;
}

/** How video decoding went lately, for failure messages. */
function mediaSummary() {
  const last = timeline[timeline.length - 1];
  if (!last) return '';
  const part = (who, from, get) => {
    let i = timeline.length - 1;
    while (i > 0 && get(timeline[i - 1]) === get(last)) i--;
    const still = last.at - timeline[i].at;
    return `${who} has decoded ${get(last)} frames from ${from}${still >= 1500 ? `, none new since ${elapsed(timeline[i].at)} (${(still / 1000).toFixed(1)} s)` : ''}`;
  };
  return `; ${part('Ann', 'Bob', (s) => s.ann.framesFromBob)}; ${part('Bob', 'Ann', (s) => s.bob.framesFromAnn)}`;
}

/** Events that must never arrive: checked on each page's full event record. */
async function checkEvents(ann, bob) {
  for (const [p, other] of [[ann, bob], [bob, ann]]) {
    const bad = await p.page.evaluate((pid) => window.chorus.events.filter((m) =>
      (m.type === 'participant_state' && m.participant_id === pid && m.state === 'disconnected') ||
      (m.type === 'participant_left' && m.participant_id === pid) ||
      m.type === 'media_unreachable' || m.type === 'left'
    ).map((m) => ({ ...m, sdp: undefined })), other.participantId);
    if (bad.length) {
      const m = bad[0];
      const what = m.type === 'participant_state' ? `${other.name} ${m.state}`
        : m.type === 'participant_left' ? `${other.name} left (${m.reason})`
          : m.type === 'media_unreachable' ? `media_unreachable for its ${m.target} connection (${m.hint})`
            : `left (${m.reason})`;
      fail(`${p.name}'s page got ${m.type}: ${what} at page time ${(m.at / 1000).toFixed(1)} s (${bad.length} such event(s): ${JSON.stringify(bad).slice(0, 600)})${mediaSummary()}`);
    }
  }
}

function phaseText(at) {
  const last = phases.filter((ph) => ph.blockedAt <= at).pop();
  if (!last) return 'before any switch';
  if (!last.switchedAt) return `${((at - last.blockedAt) / 1000).toFixed(1)} s after the path through ${last.addr} went dark, before Chromium switched`;
  return `${((at - last.switchedAt) / 1000).toFixed(1)} s after Chromium switched from ${last.addr} to ${last.to}`;
}

function startSampler(ann, bob) {
  const state = { stop: false, error: null, last: null };
  state.done = (async () => {
    while (!state.stop) {
      const started = Date.now();
      try {
        state.last = await sample(ann, bob);
      } catch (e) {
        state.error = e instanceof TestFailure ? e : new TestFailure(`sampling the pages failed: ${e.message}`);
        return;
      }
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - started)));
    }
  })();
  return state;
}

/** Waits `ms` while the sampler runs; fails at once when it found a problem. */
async function watch(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (sampler.error) throw sampler.error;
    await sleep(Math.min(200, end - Date.now()));
  }
  if (sampler.error) throw sampler.error;
}

/** The next sample taken after now. */
async function freshSample() {
  const now = Date.now();
  await until('a fresh sample of both pages', 10_000, () => {
    if (sampler.error) throw sampler.error;
    return sampler.last && sampler.last.at > now ? sampler.last : null;
  }, 100);
  return sampler.last;
}

// ---------------------------------------------------------------- the switches

/**
 * Drops packets to the address of Ann's selected subscriber pair (then lets packets to
 * the address of the previous phase through again, if any); waits until Chromium moved
 * off it.
 */
async function forceSwitch(prio, unblockPrio) {
  const before = await freshSample();
  const addr = before.ann.subAddr;
  if (!addr || !ADDRS.includes(addr)) fail(`Ann's subscriber transport uses ${addr}, not one of her interfaces ${ADDRS.join(', ')}`);
  const other = ADDRS.find((a) => a !== addr);
  const targets = ['pub', 'sub'].filter((k) => before.ann[`${k}Addr`] === addr);
  const ph = { addr, to: other, blockedAt: 0, switchedAt: null, targets, before: { pub: before.ann.pub, sub: before.ann.sub } };
  phases.push(ph);
  const dropped0 = droppedPackets();
  ph.blockedAt = Date.now();
  dropTo(addr, prio);
  if (unblockPrio) {
    stopDropping(unblockPrio);
    info(`packets to ${addr === ADDRS[0] ? ADDRS[1] : ADDRS[0]} flow again`);
  }
  info(`waiting for Chromium to move Ann's ${targets.join(' and ')} transport(s) off ${addr} (selected: publisher ${before.ann.pub}, subscriber ${before.ann.sub})`);
  const after = await until(() => `Chromium switches Ann's nominated candidate pair away from ${addr} ` +
      `within ${PHASE_SWITCH_MS / 1000} s after every packet to it is dropped — it did not, so this run proves nothing ` +
      `(${dropped0 === null ? '?' : droppedPackets() - dropped0} packets to ${addr} dropped on ${DEV}; ` +
      `last sample: ${JSON.stringify(sampler.last && sampler.last.ann)})`, PHASE_SWITCH_MS, () => {
    if (sampler.error) throw sampler.error;
    const s = sampler.last;
    if (!s || s.at <= ph.blockedAt) return null;
    return targets.every((k) => s.ann[`${k}Addr`] && s.ann[`${k}Addr`] !== addr) ? s : null;
  }, 100);
  ph.switchedAt = after.at;
  ph.after = { pub: after.ann.pub, sub: after.ann.sub };
  const dropped = droppedPackets();
  info(`Chromium switched after ${((ph.switchedAt - ph.blockedAt) / 1000).toFixed(1)} s: publisher ${before.ann.pub} -> ${after.ann.pub}, ` +
    `subscriber ${before.ann.sub} -> ${after.ann.sub} (selectedCandidatePairChanges ${after.ann.changes.join('/')}` +
    `${dropped !== null && dropped0 !== null ? `; ${dropped - dropped0} packets to ${addr} dropped so far` : ''})`);
  return ph;
}

// ---------------------------------------------------------------- verdict on the timeline

/**
 * Stretches in which no new frame was decoded: from a sample where the count had risen to
 * the last sample before it rose again (so at least that long, at most one sample more).
 */
function stalls(samples, get) {
  const out = [];
  let lastRise = samples.length ? samples[0].at : 0;
  for (let i = 1; i < samples.length; i++) {
    if (get(samples[i]) > get(samples[i - 1])) {
      if (samples[i - 1].at > lastRise) out.push({ from: lastRise, to: samples[i - 1].at });
      lastRise = samples[i].at;
    }
  }
  const last = samples[samples.length - 1];
  if (last && last.at > lastRise) out.push({ from: lastRise, to: last.at, open: true });
  return out;
}

function judge(fromAt, toAt) {
  const samples = timeline.filter((s) => s.at >= fromAt && s.at <= toAt);
  if (samples.length < 10) fail(`only ${samples.length} samples of the pages in ${((toAt - fromAt) / 1000).toFixed(0)} s: the machine is too slow for this test`);
  const secs = (toAt - fromAt) / 1000;
  const allowances = phases.map((ph) => ({ from: ph.blockedAt, to: ph.switchedAt + RECOVER_MS, ph }));

  // Ann <- Bob: her downlink was dark until each switch; afterwards frames must come back.
  for (const ph of phases) {
    const rise = samples.find((s, i) => i > 0 && s.at > ph.switchedAt && s.ann.framesFromBob > samples[i - 1].ann.framesFromBob &&
      samples[i - 1].at >= ph.switchedAt - SAMPLE_MS);
    if (!rise || rise.at - ph.switchedAt > RECOVER_MS) {
      const at = samples.filter((s) => s.at >= ph.switchedAt).map((s) => `${s.t}:${s.ann.framesFromBob}`).slice(0, 24).join(' ');
      fail(`after Chromium switched Ann's pair from ${ph.addr} to ${ph.to}, Ann decoded no new video frame from Bob within ${RECOVER_MS / 1000} s ` +
        `(framesDecoded by time: ${at}) — the server does not send to the newly nominated pair`);
    }
  }
  for (const st of stalls(samples, (s) => s.ann.framesFromBob)) {
    const allowed = allowances.some((a) => st.from >= a.from - MAX_STALL_MS && st.to <= a.to);
    if (!allowed && st.to - st.from > MAX_STALL_MS) {
      fail(`Ann decoded no video from Bob for ${((st.to - st.from) / 1000).toFixed(1)} s (${elapsed(st.from)}–${elapsed(st.to)}${st.open ? ', until the end' : ''}; ${phaseText(st.from)})`);
    }
  }
  // Bob <- Ann: her uplink was never cut, so his video must not stall beyond MAX_STALL_MS.
  for (const st of stalls(samples, (s) => s.bob.framesFromAnn)) {
    if (st.to - st.from > MAX_STALL_MS) {
      fail(`Bob decoded no video from Ann for ${((st.to - st.from) / 1000).toFixed(1)} s (${elapsed(st.from)}–${elapsed(st.to)}${st.open ? ', until the end' : ''}; ${phaseText(st.from)})`);
    }
  }
  const first = samples[0];
  const last = samples[samples.length - 1];
  const annFps = (last.ann.framesFromBob - first.ann.framesFromBob) / secs;
  const bobFps = (last.bob.framesFromAnn - first.bob.framesFromAnn) / secs;
  info(`over ${secs.toFixed(0)} s from the first switch: Ann decoded ${last.ann.framesFromBob - first.ann.framesFromBob} frames from Bob (${annFps.toFixed(1)} fps), ` +
    `Bob ${last.bob.framesFromAnn - first.bob.framesFromAnn} from Ann (${bobFps.toFixed(1)} fps)`);
  if (bobFps < 5) fail(`Bob decoded only ${bobFps.toFixed(1)} fps from Ann after the switch`);
  if (annFps < 3) fail(`Ann decoded only ${annFps.toFixed(1)} fps from Bob after the switch`);
}

// ---------------------------------------------------------------- the test

async function main() {
  checkNetwork();
  await demoPageServed(BASE);

  info(`launching two ${EXE}: Ann (interfaces ${ADDRS.join(' and ')}) and Bob (127.0.0.1 only)`);
  const [ann, bob] = await Promise.all([openPage('Ann', false), openPage('Bob', true)]);
  const room = `pair-switch-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
  info(`room ${room}`);
  await join(ann, room);
  await join(bob, room);

  for (const [p, o] of [[ann, bob], [bob, ann]]) {
    await until(() => `${p.name} decodes video from ${o.name} (page: ${JSON.stringify(p.lastSnap || null)})`, 30_000, async () => {
      p.lastSnap = await snap(p);
      return framesFrom(await inbound(p), o) > 0;
    }, 500);
  }
  info('both decode each other');

  // The setup really is what this test is about: Ann has a host candidate on each of her
  // interfaces on both connections, Bob has none on them.
  const missingHosts = (t) => {
    const hosts = new Set(((t && t.localCandidates) || []).filter((c) => c.type === 'host' && c.protocol === 'udp').map((c) => c.address));
    return ADDRS.filter((a) => !hosts.has(a));
  };
  let annT = null;
  await until(() => `Ann's connections gather a UDP host candidate on each of her interfaces ${ADDRS.join(' and ')} ` +
      `(she needs two to switch between; local candidates: ${JSON.stringify(annT && Object.fromEntries(Object.entries(annT).map(([k, t]) => [k, t.localCandidates.map((c) => `${c.address}:${c.port}/${c.protocol}`)])))})`,
  10_000, async () => {
    annT = await transports(ann);
    return ['publisher', 'subscriber'].every((k) => annT[k] && missingHosts(annT[k]).length === 0);
  }, 500);
  const bobT = await transports(bob);
  for (const target of ['publisher', 'subscriber']) {
    const t = bobT[target];
    const on = ((t && t.localCandidates) || []).filter((c) => ADDRS.includes(c.address));
    if (on.length) fail(`Bob (the plain page) gathered candidates on Ann's interfaces (${on.map((c) => c.address).join(', ')}): the pref webrtc.ip_handling_policy did not apply`);
    if (!t || !t.local || t.local.address !== '127.0.0.1') fail(`Bob's ${target} transport does not use 127.0.0.1: ${JSON.stringify(t && t.local)}`);
  }
  info(`Ann's host candidates: ${annT.subscriber.localCandidates.filter((c) => c.type === 'host').map((c) => `${c.address}:${c.port}`).join(', ')}`);

  sampler = startSampler(ann, bob);
  // Let the selected pairs settle (Chromium may switch once right after connecting).
  await until('Ann\'s selected candidate pairs stay the same for 2 s', 12_000, async () => {
    if (sampler.error) throw sampler.error;
    const recent = timeline.filter((s) => s.at > Date.now() - 2000);
    if (recent.length < 3) return false;
    return recent.every((s) => s.ann.pub && s.ann.sub && s.ann.pub === recent[0].ann.pub && s.ann.sub === recent[0].ann.sub);
  }, 250);
  await watch(1000);
  await checkEvents(ann, bob);
  const settled = sampler.last;
  info(`Ann's selected pairs: publisher ${settled.ann.pub}, subscriber ${settled.ann.sub}`);
  if (process.env.E2E_ARTIFACTS) {
    fs.mkdirSync(process.env.E2E_ARTIFACTS, { recursive: true });
    for (const p of pages) await p.page.screenshot({ path: path.join(process.env.E2E_ARTIFACTS, `pair-switch-${p.name}-before.png`) });
  }

  // ------------------------------------------------ switch 1: Ann's selected path goes dark downstream
  const ph1 = await forceSwitch(11);
  const end = ph1.switchedAt + OBSERVE_MS;
  await watch(Math.max(0, ph1.switchedAt + SECOND_SWITCH_AFTER_MS - Date.now()));
  await checkEvents(ann, bob);

  // ------------------------------------------------ switch 2: back again
  const ph2 = await forceSwitch(12, 11);
  await watch(Math.max(0, Math.max(end, ph2.switchedAt + MIN_AFTER_SECOND_MS) - Date.now()));
  await checkEvents(ann, bob);
  sampler.stop = true;
  await sampler.done;
  if (sampler.error) throw sampler.error;

  judge(ph1.switchedAt, timeline[timeline.length - 1].at);

  // The pair switch alone has to keep the call going: an ICE restart would mean the
  // server did not follow the nomination (or did not count Ann's packets as alive).
  for (const p of pages) {
    const s = await snap(p);
    if (s.iceRestarts.length) fail(`${p.name}'s page had to restart ICE: ${s.iceRestarts.map((r) => `${r.target} (${r.reason}) at page time ${(r.at / 1000).toFixed(1)} s`).join('; ')}`);
    if (Object.keys(s.mediaUnreachable).length) fail(`${p.name}'s page shows media unreachable: ${JSON.stringify(s.mediaUnreachable)}`);
    const errs = p.console.filter((l) => l.includes('PAGEERROR'));
    if (errs.length) fail(`${p.name}'s page threw: ${errs.join(' | ')}`);
  }
  const notice = await ann.page.isVisible('[data-testid="media-unreachable"]');
  if (notice) fail('Ann\'s page shows the media-unreachable notice');
  if (process.env.E2E_ARTIFACTS) {
    for (const p of pages) await p.page.screenshot({ path: path.join(process.env.E2E_ARTIFACTS, `pair-switch-${p.name}-after.png`) });
    writeTimeline(process.env.E2E_ARTIFACTS);
  }
  info(`switches: ${phases.map((ph) => `${ph.addr} -> ${ph.to} after ${((ph.switchedAt - ph.blockedAt) / 1000).toFixed(1)} s`).join(', ')}`);
}

function writeTimeline(dir) {
  fs.writeFileSync(path.join(dir, 'pair-switch-timeline.json'), JSON.stringify({
    t0, addrs: ADDRS,
    phases: phases.map((ph) => ({ ...ph, blockedAt: elapsed(ph.blockedAt), switchedAt: ph.switchedAt ? elapsed(ph.switchedAt) : null })),
    samples: timeline,
  }, null, 1));
}

async function dumpArtifacts(err) {
  const dir = await saveArtifacts(err, {
    test: 'pair-switch', pages, prefix: 'pair-switch-',
    state: async (p) => ({
      snapshot: await snap(p),
      transports: await transports(p),
      events: await p.page.evaluate(() => window.chorus.events.map((m) => (m.sdp ? { ...m, sdp: `<${m.sdp.length} bytes>` } : m))),
    }),
  });
  writeTimeline(dir);
  const tail = timeline.slice(-24).map((s) => `${s.t} ann pub ${s.ann.pub} sub ${s.ann.sub} ice ${s.ann.pubIce}/${s.ann.subIce} ` +
    `frames from Bob ${s.ann.framesFromBob}, Bob's frames from Ann ${s.bob.framesFromAnn}, tiles ${s.ann.tileOfBob}/${s.bob.tileOfAnn}`);
  if (tail.length) console.error(`---- last samples (timeline in ${dir}):\n${tail.join('\n')}`);
}

async function cleanup() {
  if (sampler) sampler.stop = true;
  for (const prio of [...filters]) stopDropping(prio);
  for (const p of pages) {
    if (p.context) {
      try {
        await Promise.race([p.context.close(), sleep(10_000)]);
      } catch (e) { /* ignore */ }
    }
    fs.rmSync(p.userDataDir, { recursive: true, force: true });
  }
}

runTest({ main, limitMs: WHOLE_TEST_MS, info, dumpArtifacts, cleanup });
