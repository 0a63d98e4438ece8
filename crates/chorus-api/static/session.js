// Joining and leaving: a token from the demo's `POST /demo/token`, camera and
// microphone, the signaling socket, `join` (and the lobby, if the room has one), then
// publishing what we have; at the end, `leave` and everything torn down. One object per
// join (`session`, state.js) holds what belongs to that join only.

import { $, chorus, render, session, setSession } from './state.js';
import { LEAVE_REASONS, clearError, closeText, describeError, log, setStatus, showError } from './notices.js';
import { send, waitFor } from './signaling.js';
import { onServerMessage } from './frames.js';
import { iceBookkeeping } from './connection.js';
import { negotiatePublisher } from './negotiation.js';
import { publishTrack, videoConstraints } from './publish.js';

const JOIN_TIMEOUT_MS = 10000;
/** How long the page waits in a lobby for someone to admit it. */
const LOBBY_WAIT_MS = 30 * 60 * 1000;
const PING_INTERVAL_MS = 15000;

async function fetchToken(room, name) {
  let res;
  // A room with a lobby, and joining as a guest (without the admit grant): demo only.
  const lobby = $('lobby-room').checked;
  const guest = $('as-guest').checked;
  try {
    res = await fetch('/demo/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ room, name, lobby, guest }),
    });
  } catch (e) {
    throw new Error(`cannot reach the server for a token: ${e.message}`);
  }
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const err = body && body.error;
    throw new Error(err ? describeError(err.code, err.message) : `token request failed: HTTP ${res.status} ${text.slice(0, 200)}`);
  }
  if (!body || !body.token) throw new Error('token response has no token');
  return body;
}

/**
 * The server that served this page also serves the signaling socket, so connect to
 * this page's origin (the server's `url` may name an address this browser cannot
 * reach, e.g. 127.0.0.1 seen from another machine); keep the path it gives.
 */
function signalingUrl(url, token) {
  let path = '/v1/rtc';
  try {
    if (url) path = new URL(url, location.href).pathname;
  } catch (e) { /* keep the default */ }
  const u = new URL(path, location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = '';
  u.hash = '';
  u.searchParams.set('access_token', token);
  return u.toString();
}
async function getMedia() {
  // The devices chosen on the page (devices.js), if any.
  const pick = chorus.devices ? chorus.devices.constrain : (kind, c) => c;
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: pick('audioinput', true),
      video: pick('videoinput', videoConstraints()),
    });
  } catch (e) {
    showError(`Camera/microphone unavailable (${e.name}: ${e.message}). Joining without sending media.`, 'media_unavailable');
    return new MediaStream();
  }
}

export async function join(room, name) {
  if (session) throw new Error('already in a room');
  clearError();
  const s = {
    ws: null,
    pubPc: null,
    subPc: null,
    joined: false,
    leaving: false,
    waiters: new Set(),
    chain: { publisher: Promise.resolve(), subscriber: Promise.resolve() },
    applying: { publisher: false, subscriber: false },
    remoteCandidates: { publisher: [], subscriber: [] },
    localCandidates: { publisher: [], subscriber: [] },
    localSent: { publisher: false, subscriber: false },
    midStream: new Map(),
    pubQueued: null,
    pubIceRestart: false,
    /** Per connection: timers and bookkeeping of ICE restarts. */
    ice: iceBookkeeping(),
    pingTimer: null,
    closed: null,
  };
  setSession(s);
  Object.assign(chorus, {
    state: 'joining', room, participantId: null, identity: null, self: null,
    leftReason: null, held: false, closeCode: null, localTracks: {}, events: [], errors: [],
    mediaUnreachable: {}, iceRestarts: [], screen: null, chat: [], chatOpen: false,
  });
  chorus.pausedVideos.clear();
  chorus.roster.clear();
  chorus.waiting.clear();
  chorus.lobby = null;
  chorus.departures = [];
  chorus.remoteTracks.clear();
  $('join').disabled = true;
  setStatus('getting camera and microphone…');
  render();

  try {
    const [stream, tok] = await Promise.all([getMedia(), fetchToken(room, name)]);
    if (s !== session) { stream.getTracks().forEach((t) => t.stop()); return; }
    chorus.localStream = stream;
    $('local-video').srcObject = stream;

    setStatus('connecting…');
    const ws = new WebSocket(signalingUrl(tok.url, tok.token));
    s.ws = chorus.ws = ws;
    s.closed = new Promise((resolve) => {
      ws.onclose = (e) => { onClose(s, e); resolve(); };
    });
    ws.onmessage = (e) => { if (s === session) onServerMessage(s, e.data); };
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error('cannot open the signaling WebSocket'));
      s.closed.then(() => reject(new Error(closeText(chorus.closeCode, chorus.closeReasonText))));
    });
    ws.onerror = null;

    // Joined once the roster is whole: `joined`, and its `roster` pages if it has more.
    const rosterDone = (m) => (m.type === 'joined' && m.roster_complete !== false) || (m.type === 'roster' && m.complete);
    const answer = (ms) => Promise.race([
      waitFor(s, (m) => rosterDone(m) || m.type === 'error' || m.type === 'lobby', ms, 'joined'),
      s.closed.then(() => { throw new Error(closeText(chorus.closeCode, chorus.closeReasonText)); }),
    ]);
    const joined = answer(JOIN_TIMEOUT_MS);
    send({ type: 'join' });
    let j = await joined;
    // In a room's lobby `joined` comes once someone admits us, however long that takes.
    while (j.type === 'lobby') {
      render();
      j = await answer(LOBBY_WAIT_MS);
    }
    if (j.type === 'error') throw new Error(describeError(j.code, j.message));

    s.pingTimer = setInterval(() => send({ type: 'ping', ts: Date.now() }), PING_INTERVAL_MS);
    render();

    // Publish what we have: announce each track, then add it and negotiate once.
    const grants = (chorus.self && chorus.self.grants) || {};
    const allowed = (src) => grants.can_publish !== false &&
      (!grants.can_publish_sources || grants.can_publish_sources.length === 0 || grants.can_publish_sources.includes(src));
    const mic = stream.getAudioTracks()[0];
    const cam = stream.getVideoTracks()[0];
    const toPublish = [];
    if (mic && allowed('microphone')) toPublish.push([mic, 'microphone']);
    if (cam && allowed('camera')) toPublish.push([cam, 'camera']);
    for (const [track, source] of toPublish) {
      try {
        await publishTrack(s, track, source);
      } catch (e) {
        if (s !== session) return;
        showError(`Could not publish: ${e.message}`, 'publish_failed');
      }
    }
    if (toPublish.length === 0) log('nothing to publish (no devices or no permission)');
    // A failed negotiation is reported by enqueue(); stay in the room to receive. The
    // offer carries the chat's data channels even when there is nothing to publish.
    await negotiatePublisher(s).catch(() => {});
    render();
  } catch (e) {
    if (s === session) {
      const last = [...chorus.events].reverse().find((m) => m.type === 'error');
      const detail = last && !e.message.includes(last.code) ? ` — ${describeError(last.code, last.message)}` : '';
      // Turned away from the lobby (or removed while waiting): say why, not how it closed.
      if (chorus.leftReason) showError(`Could not join: ${LEAVE_REASONS[chorus.leftReason] || chorus.leftReason}.`, chorus.leftReason);
      else showError(`Could not join: ${e.message}${detail}`, last ? last.code : 'join_failed');
      teardown(s, 'failed');
    }
  }
}

function onClose(s, e) {
  if (s !== session) return;
  chorus.closeCode = e.code;
  chorus.closeReasonText = e.reason || '';
  log(`socket closed: code ${e.code} ${e.reason || ''}`);
  for (const w of [...s.waiters]) w.reject(new Error(closeText(e.code, e.reason)));
  s.waiters.clear();
  if (!s.joined) return; // join() reports it
  if (s.leaving) return; // leave() tears down
  if (!chorus.leftReason) {
    const last = [...chorus.events].reverse().find((m) => m.type === 'error');
    const detail = last ? ` — ${describeError(last.code, last.message)}` : '';
    showError(`Disconnected from the room: ${closeText(e.code, e.reason)}${detail}`, e.code === 4500 ? 'room_closed' : 'disconnected');
  }
  teardown(s, chorus.leftReason ? 'left' : 'failed');
}

export async function leave() {
  const s = session;
  if (!s || s.leaving) return;
  s.leaving = true;
  chorus.state = 'leaving';
  render();
  if (s.ws && s.ws.readyState === WebSocket.OPEN) {
    const left = waitFor(s, (m) => m.type === 'left', 3000, 'left').catch(() => null);
    send({ type: 'leave' });
    await Promise.race([left, s.closed, new Promise((r) => setTimeout(r, 3000))]);
  }
  teardown(s, 'left');
}

function teardown(s, finalState) {
  if (s !== session) return;
  setSession(null);
  clearInterval(s.pingTimer);
  for (const w of Object.values(s.ice)) {
    clearTimeout(w.disconnectedTimer);
    clearTimeout(w.retryTimer);
    clearTimeout(w.deferTimer);
  }
  chorus.mediaUnreachable = {};
  for (const w of [...s.waiters]) w.reject(new Error('session ended'));
  s.waiters.clear();
  if (s.ws && (s.ws.readyState === WebSocket.OPEN || s.ws.readyState === WebSocket.CONNECTING)) {
    try { s.ws.close(1000, 'bye'); } catch (e) { /* ignore */ }
  }
  for (const pc of [s.pubPc, s.subPc]) if (pc) pc.close();
  if (chorus.localStream) chorus.localStream.getTracks().forEach((t) => t.stop());
  if (chorus.screen) chorus.screen.stream.getTracks().forEach((t) => t.stop());
  chorus.screen = null;
  $('local-video').srcObject = null;
  chorus.localStream = null;
  chorus.localTracks = {};
  chorus.roster.clear();
  chorus.remoteTracks.clear();
  chorus.pubPc = chorus.subPc = chorus.ws = null;
  chorus.state = finalState;
  $('join').disabled = false;
  setStatus(finalState === 'left' ? 'left the room' : 'not connected');
  render();
}
