// What the page receives and how its connections are, from getStats(), and a plain-JSON
// picture of the page: for tests and debugging (`window.chorus`).

import { chorus } from './state.js';

/**
 * Inbound media per remote participant, from the subscriber connection:
 * { byParticipant: { [participant_id]: { audio, video } }, unmapped: { audio, video } }
 * where audio = { packetsReceived, totalSamplesReceived, bytesReceived, tracks } and
 * video = { packetsReceived, framesDecoded, framesReceived, frameWidth, frameHeight, bytesReceived, tracks }.
 * Tracks whose stream id is not an announced track_id (e.g. a mixed audio stream) go to `unmapped`.
 */
export async function inboundStats() {
  const owner = new Map();
  for (const p of chorus.roster.values()) for (const t of p.tracks || []) owner.set(t.track_id, p.participant_id);
  const out = { byParticipant: {}, unmapped: {} };
  for (const rt of chorus.remoteTracks.values()) {
    let report;
    try { report = await rt.receiver.getStats(); } catch (e) { continue; }
    const pid = owner.get(rt.trackId);
    const bucket = pid ? (out.byParticipant[pid] = out.byParticipant[pid] || {}) : out.unmapped;
    for (const st of report.values()) {
      if (st.type !== 'inbound-rtp') continue;
      const kind = st.kind || st.mediaType || rt.kind;
      const acc = bucket[kind] = bucket[kind] || { packetsReceived: 0, bytesReceived: 0, tracks: [] };
      acc.tracks.push(rt.trackId);
      acc.packetsReceived += st.packetsReceived || 0;
      acc.bytesReceived += st.bytesReceived || 0;
      if (kind === 'video') {
        acc.framesDecoded = (acc.framesDecoded || 0) + (st.framesDecoded || 0);
        acc.framesReceived = (acc.framesReceived || 0) + (st.framesReceived || 0);
        acc.frameWidth = Math.max(acc.frameWidth || 0, st.frameWidth || 0);
        acc.frameHeight = Math.max(acc.frameHeight || 0, st.frameHeight || 0);
        for (const k of ['keyFramesDecoded', 'nackCount', 'pliCount', 'firCount', 'packetsLost']) {
          acc[k] = (acc[k] || 0) + (st[k] || 0);
        }
        acc.codec = codecOf(report, st) || acc.codec;
      } else {
        acc.totalSamplesReceived = (acc.totalSamplesReceived || 0) + (st.totalSamplesReceived || 0);
        acc.codec = codecOf(report, st) || acc.codec;
      }
    }
  }
  return out;
}

/**
 * The transport of each connection: the selected candidate pair with its local and
 * remote candidate, how often it changed, every local candidate gathered, and what DTLS
 * negotiated (this page's DTLS role, the SRTP protection profile, the cipher suite).
 * { publisher: { state, selectedPairId, changes, local: {address, port, type, id}, remote, localCandidates,
 *   dtlsRole, srtpCipher, dtlsCipher }, subscriber: ... }
 */
export async function transportStats() {
  const out = {};
  for (const [target, pc] of [['publisher', chorus.pubPc], ['subscriber', chorus.subPc]]) {
    if (!pc) continue;
    let report;
    try { report = await pc.getStats(); } catch (e) { continue; }
    let transport = null;
    const localCandidates = [];
    for (const st of report.values()) {
      if (st.type === 'transport' && (!transport || st.selectedCandidatePairId)) transport = st;
      if (st.type === 'local-candidate') localCandidates.push({ id: st.id, address: st.address, port: st.port, type: st.candidateType, protocol: st.protocol });
    }
    const cand = (id) => {
      const c = id && report.get(id);
      return c ? { id: c.id, address: c.address, port: c.port, type: c.candidateType } : null;
    };
    const pair = transport && transport.selectedCandidatePairId ? report.get(transport.selectedCandidatePairId) : null;
    out[target] = {
      ice: pc.iceConnectionState,
      state: pc.connectionState,
      selectedPairId: pair ? pair.id : null,
      changes: transport ? transport.selectedCandidatePairChanges || 0 : 0,
      local: pair ? cand(pair.localCandidateId) : null,
      remote: pair ? cand(pair.remoteCandidateId) : null,
      localCandidates,
      dtlsRole: transport ? transport.dtlsRole || null : null,
      srtpCipher: transport ? transport.srtpCipher || null : null,
      dtlsCipher: transport ? transport.dtlsCipher || null : null,
    };
  }
  return out;
}

function codecOf(report, st) {
  const c = st.codecId && report.get(st.codecId);
  return c ? c.mimeType : undefined;
}

/** A plain-JSON picture of the page for tests. */
export function snapshot() {
  return {
    state: chorus.state,
    room: chorus.room,
    participantId: chorus.participantId,
    identity: chorus.identity,
    leftReason: chorus.leftReason,
    closeCode: chorus.closeCode,
    roster: [...chorus.roster.values()].map((p) => ({
      participant_id: p.participant_id, identity: p.identity, name: p.name, state: p.state,
      tracks: (p.tracks || []).map((t) => ({ track_id: t.track_id, source: t.source, muted: t.muted })),
    })),
    remoteTracks: [...chorus.remoteTracks.values()].map((r) => ({ trackId: r.trackId, kind: r.kind, mid: r.mid, readyState: r.track.readyState })),
    localTracks: Object.fromEntries(Object.entries(chorus.localTracks).map(([k, v]) => [k, { trackId: v.trackId, muted: v.muted }])),
    pub: chorus.pubPc ? { signaling: chorus.pubPc.signalingState, connection: chorus.pubPc.connectionState, ice: chorus.pubPc.iceConnectionState } : null,
    sub: chorus.subPc ? { signaling: chorus.subPc.signalingState, connection: chorus.subPc.connectionState, ice: chorus.subPc.iceConnectionState } : null,
    mediaUnreachable: { ...chorus.mediaUnreachable },
    iceRestarts: chorus.iceRestarts.map((r) => ({ ...r })),
    speakers: chorus.speakers ? [...chorus.speakers] : [],
    errors: chorus.errors.map((e) => `${e.code}: ${e.message}`),
    pausedVideos: [...chorus.pausedVideos.keys()],
    sharingScreen: !!chorus.screen,
    held: chorus.held,
    eventTypes: chorus.events.map((m) => m.type),
  };
}
