// SDP on the two connections. On the *publisher* connection this page offers and the
// server answers; on the *subscriber* connection the server offers (again whenever
// remote tracks come or go) and this page answers. Each connection has one offerer, so
// offers never collide; every SDP step of a connection still runs through a promise
// chain so that they never interleave.

import { chorus, render, session } from './state.js';
import { describeError, showError } from './notices.js';
import { REPLY_TIMEOUT_MS, send, waitFor } from './signaling.js';
import { flushLocalCandidates, flushRemoteCandidates } from './candidates.js';

/** Chained so that no two SDP operations of one connection interleave. */
function enqueue(s, target, job) {
  const p = s.chain[target].then(() => (s === session ? job() : undefined));
  s.chain[target] = p.catch((e) => {
    if (s !== session || s.leaving) return;
    showError(`Negotiation on the ${target} connection failed: ${e.message}`, 'negotiation_failed');
  });
  return p;
}

export function negotiatePublisher(s, opts) {
  if (opts && opts.iceRestart) s.pubIceRestart = true;
  // Coalesce: if a negotiation is already queued and has not started, it will pick up this change.
  if (s.pubQueued) return s.pubQueued;
  s.pubQueued = enqueue(s, 'publisher', async () => {
    s.pubQueued = null;
    const iceRestart = s.pubIceRestart;
    s.pubIceRestart = false;
    const pc = s.pubPc;
    const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
    // Candidates gathered from here on belong to this offer: hold them until it is sent.
    s.localSent.publisher = false;
    await pc.setLocalDescription(offer);
    const answer = waitFor(
      s,
      (m) => (m.type === 'answer' && m.target === 'publisher') || m.type === 'error',
      REPLY_TIMEOUT_MS,
      'the publisher answer',
    );
    send({ type: 'offer', target: 'publisher', sdp: pc.localDescription.sdp });
    flushLocalCandidates(s, 'publisher');
    const m = await answer;
    if (m.type === 'error') throw new Error(`the server refused the offer: ${describeError(m.code, m.message)}`);
    s.applying.publisher = true;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
    } finally {
      s.applying.publisher = false;
    }
    await flushRemoteCandidates(s, 'publisher');
  });
  return s.pubQueued;
}

export function onSubscriberOffer(s, sdp) {
  enqueue(s, 'subscriber', async () => {
    const pc = s.subPc;
    s.applying.subscriber = true;
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp });
    } finally {
      s.applying.subscriber = false;
    }
    syncRemoteTracks(s, sdp);
    await flushRemoteCandidates(s, 'subscriber');
    const answer = await pc.createAnswer();
    // After an ICE restart new candidates follow; they may only go out after the answer.
    s.localSent.subscriber = false;
    await pc.setLocalDescription(answer);
    send({ type: 'answer', target: 'subscriber', sdp: pc.localDescription.sdp });
    flushLocalCandidates(s, 'subscriber');
    render();
  });
}

/** mid -> { kind, port, direction, stream } from an SDP. */
export function parseSections(sdp) {
  const out = new Map();
  const sections = sdp.split(/\r?\nm=/).slice(1);
  for (const sec of sections) {
    const lines = sec.split(/\r?\n/);
    const [kind, port] = lines[0].split(' ');
    const info = { kind, port: parseInt(port, 10), direction: 'sendrecv', stream: null };
    let mid = null;
    for (const line of lines) {
      if (line.startsWith('a=mid:')) mid = line.slice(6).trim();
      else if (line.startsWith('a=msid:')) {
        const id = line.slice(7).trim().split(' ')[0];
        if (id && id !== '-') info.stream = id;
      } else if (!info.stream && /^a=ssrc:\d+ msid:/.test(line)) {
        info.stream = line.split('msid:')[1].trim().split(' ')[0];
      } else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) {
        info.direction = line.slice(2);
      }
    }
    if (mid !== null) out.set(mid, info);
  }
  return out;
}

/**
 * Rebuilds chorus.remoteTracks from the server's offer: every m-section the server
 * sends on carries one track in a stream whose id is the server's track_id.
 */
function syncRemoteTracks(s, sdp) {
  const sections = parseSections(sdp);
  const seen = new Set();
  for (const tr of s.subPc.getTransceivers()) {
    if (!tr.mid || !tr.receiver || !tr.receiver.track) continue;
    const info = sections.get(tr.mid);
    if (!info || info.port === 0) continue;
    if (info.direction !== 'sendonly' && info.direction !== 'sendrecv') continue;
    const trackId = info.stream || s.midStream.get(tr.mid);
    if (!trackId) continue;
    seen.add(trackId);
    const track = tr.receiver.track;
    const cur = chorus.remoteTracks.get(trackId);
    if (!cur || cur.track !== track) {
      chorus.remoteTracks.set(trackId, {
        trackId,
        kind: track.kind,
        mid: tr.mid,
        receiver: tr.receiver,
        track,
        stream: new MediaStream([track]),
      });
    }
  }
  for (const id of [...chorus.remoteTracks.keys()]) {
    if (!seen.has(id)) chorus.remoteTracks.delete(id);
  }
}
