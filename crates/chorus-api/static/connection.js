// The two peer connections of a join and ICE restarts. When a connection stays
// `disconnected` for 3 s or becomes `failed`, the page restarts ICE on it (publisher:
// `restartIce()` and a new offer; subscriber: it asks the server with `ice_restart`, and
// the server sends a new offer). The server can ask for a restart of either connection
// too (`ice_restart`).

import { $, chorus, render, session } from './state.js';
import { clearError, log, showError } from './notices.js';
import { send } from './signaling.js';
import { onLocalCandidate } from './candidates.js';
import { negotiatePublisher } from './negotiation.js';
import { clearUnreachable } from './unreachable.js';
import { onChatMessage } from './chat.js';

/** How long a connection may stay ICE `disconnected` before the page restarts ICE on it. */
const ICE_DISCONNECTED_RESTART_MS = 3000;
/** At most one ICE restart per connection this often. */
const ICE_RESTART_MIN_GAP_MS = 5000;
/** If a restart did not bring the connection back, try again after this long (doubling up to the max). */
const ICE_RESTART_RETRY_MS = 10000;
const ICE_RESTART_RETRY_MAX_MS = 30000;

/** Per connection of a new session: timers and bookkeeping of its ICE restarts. */
export function iceBookkeeping() {
  const one = () => ({ disconnectedTimer: null, retryTimer: null, deferTimer: null, lastAt: null, retryMs: ICE_RESTART_RETRY_MS });
  return { publisher: one(), subscriber: one() };
}

/**
 * Both connections, made when `joined` arrives (with its `ice_servers`) and before the
 * next frame is handled, so that a subscriber offer right after `joined` finds its
 * connection.
 */
export function createPcs(s, iceServers) {
  s.pubPc = chorus.pubPc = newPc(s, 'publisher', iceServers);
  s.subPc = chorus.subPc = newPc(s, 'subscriber', iceServers);
  // The data channels go into the first publisher offer (made even with nothing to publish).
  s.chat = s.pubPc.createDataChannel('_reliable');
  s.lossy = s.pubPc.createDataChannel('_lossy', { ordered: false, maxRetransmits: 0 });
  s.chat.onopen = () => { if (s === session) { chorus.chatOpen = true; render(); } };
  s.chat.onclose = () => { if (s === session) { chorus.chatOpen = false; render(); } };
  s.chat.onmessage = (e) => { if (s === session) onChatMessage(e.data); };
  s.subPc.ontrack = (e) => {
    if (e.streams && e.streams[0] && e.transceiver && e.transceiver.mid) s.midStream.set(e.transceiver.mid, e.streams[0].id);
  };
}

/**
 * `iceServers`: the TURN servers of `joined.ice_servers` (none when the server has none).
 * `?relay=1` in the page's URL forces every path through them (`iceTransportPolicy:
 * 'relay'`), as a client behind a UDP-blocking network would have to.
 */
function newPc(s, target, iceServers) {
  const relayOnly = new URLSearchParams(location.search).get('relay') === '1';
  const pc = new RTCPeerConnection({
    iceServers,
    iceTransportPolicy: relayOnly ? 'relay' : 'all',
    bundlePolicy: 'max-bundle',
    rtcpMuxPolicy: 'require',
  });
  pc.onicecandidate = (e) => onLocalCandidate(s, target, e.candidate);
  pc.onconnectionstatechange = () => {
    if (s !== session) return;
    log(`${target} connection: ${pc.connectionState}`);
    const failedText = `The ${target} media connection failed (ICE/DTLS). Media may not flow.`;
    if (pc.connectionState === 'connected') {
      clearUnreachable(target);
      // It came back (e.g. after an ICE restart): the failure shown for it is over.
      if ($('error').textContent === failedText) clearError();
    }
    if (pc.connectionState === 'failed' && s.joined && !s.leaving) {
      showError(failedText, 'pc_failed');
      requestIceRestart(s, target, 'connection failed');
    }
    render();
  };
  pc.oniceconnectionstatechange = () => onIceState(s, target, pc);
  return pc;
}

// ---------------------------------------------------------------- ICE restarts

function pcOf(s, target) {
  return target === 'publisher' ? s.pubPc : s.subPc;
}

function iceUp(pc) {
  return pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed';
}

/** Restarts ICE when a connection stays disconnected for a while or fails. */
function onIceState(s, target, pc) {
  if (s !== session) return;
  const st = pc.iceConnectionState;
  log(`${target} ICE: ${st}`);
  const w = s.ice[target];
  if (st !== 'disconnected') {
    clearTimeout(w.disconnectedTimer);
    w.disconnectedTimer = null;
  }
  if (iceUp(pc)) {
    clearTimeout(w.retryTimer);
    w.retryTimer = null;
    w.retryMs = ICE_RESTART_RETRY_MS;
  } else if (st === 'failed') {
    requestIceRestart(s, target, 'ICE failed');
  } else if (st === 'disconnected' && !w.disconnectedTimer) {
    w.disconnectedTimer = setTimeout(() => {
      w.disconnectedTimer = null;
      if (s === session && pc.iceConnectionState === 'disconnected') {
        requestIceRestart(s, target, `ICE disconnected for ${ICE_DISCONNECTED_RESTART_MS / 1000} s`);
      }
    }, ICE_DISCONNECTED_RESTART_MS);
  }
  render();
}

/**
 * Restarts ICE on one connection: the publisher with `restartIce()` and a new offer
 * (through the publisher chain), the subscriber by asking the server, which answers
 * with a new offer. At most one restart per ICE_RESTART_MIN_GAP_MS; while the
 * connection stays down, it is tried again with a growing delay.
 */
export function requestIceRestart(s, target, reason, force) {
  if (s !== session || !s.joined || s.leaving) return;
  const pc = pcOf(s, target);
  // Nothing negotiated yet on this connection: nothing to restart.
  if (!pc || !pc.remoteDescription || pc.signalingState === 'closed') return;
  const w = s.ice[target];
  const now = performance.now();
  const wait = w.lastAt === null ? 0 : w.lastAt + ICE_RESTART_MIN_GAP_MS - now;
  if (wait > 0) {
    // Too soon after the last one, whose follow-up (retryTimer) checks on it anyway;
    // unless the server asked: then restart when the gap is over.
    if (!force && w.retryTimer) return;
    if (!w.deferTimer) {
      w.deferTimer = setTimeout(() => {
        w.deferTimer = null;
        if (s === session && (force || !iceUp(pc))) requestIceRestart(s, target, reason, force);
      }, wait);
    }
    return;
  }
  w.lastAt = now;
  chorus.iceRestarts.push({ target, reason, at: now });
  log(`restarting ICE on the ${target} connection: ${reason}`);
  if (target === 'publisher') {
    pc.restartIce();
    negotiatePublisher(s, { iceRestart: true }).catch(() => {});
  } else {
    send({ type: 'ice_restart', target: 'subscriber' });
  }
  // If this does not bring it back, try again later.
  clearTimeout(w.retryTimer);
  w.retryTimer = setTimeout(() => {
    w.retryTimer = null;
    if (s !== session || iceUp(pc)) return;
    w.retryMs = Math.min(w.retryMs * 2, ICE_RESTART_RETRY_MAX_MS);
    requestIceRestart(s, target, `still ${pc.iceConnectionState} after an ICE restart`);
  }, w.retryMs);
}
