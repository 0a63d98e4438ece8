// The stub's media side; runs in a page of the stub's own Chromium (see stub-server.js).
// Every participant has a publisher connection (answers the client's offers) and a
// subscriber connection (offers the other participants' tracks, stream id = track_id).
const parts = new Map(); // connId -> participant
const byPid = new Map();
const fwd = new Map(); // track_id -> { track, stream, info }
const rnd = () => Math.random().toString(36).slice(2, 10);
function send(p, m) { window.toClient(p.conn, JSON.stringify(m)); }
function info(p) { return { participant_id: p.pid, identity: p.identity, name: p.name, state: p.state, grants: { can_publish: true, can_publish_sources: [], can_subscribe: true, can_publish_data: true }, tracks: [...p.tracks.values()], joined_at_ms: p.joinedAt }; }
function others(p) { return [...parts.values()].filter(o => o !== p && o.room === p.room && o.joined); }
function parseMsid(sdp) { const m = new Map(); let mid = null; for (const l of sdp.split(/\r?\n/)) { if (l.startsWith('m=')) mid = null; if (l.startsWith('a=mid:')) mid = l.slice(6); if (l.startsWith('a=msid:') && mid !== null) m.set(mid, l.slice(7).split(' ')[1]); } return m; }

window.fromClient = async (conn, text, claims) => {
  const m = JSON.parse(text);
  let p = parts.get(conn);
  if (m.type === 'join') {
    p = { conn, pid: 'PA_' + rnd(), identity: claims.sub, name: claims.name, room: claims.room, state: 'connecting', tracks: new Map(), byCid: new Map(), joinedAt: Date.now(), senders: new Map(), subBusy: false, subDirty: false, joined: true, pubMids: new Map() };
    parts.set(conn, p); byPid.set(p.pid, p);
    p.pub = new RTCPeerConnection(); p.sub = new RTCPeerConnection();
    for (const [pc, target] of [[p.pub, 'publisher'], [p.sub, 'subscriber']]) {
      pc.onicecandidate = e => send(p, { type: 'candidate', target, candidate: e.candidate ? e.candidate.toJSON() : null });
    }
    p.pub.onconnectionstatechange = () => { if (p.pub.connectionState === 'connected') { p.state = 'connected'; for (const o of [p, ...others(p)]) send(o, { type: 'participant_state', participant_id: p.pid, state: 'connected' }); } };
    p.pub.ontrack = (e) => {
      const cid = p.pubMids.get(e.transceiver.mid);
      // Firefox's msid track id is not the MediaStreamTrack id the page publishes as cid:
      // then take the one published track of that kind that is not forwarded yet.
      const ti = p.byCid.get(cid) || [...p.tracks.values()].find((t) => t.kind === e.track.kind && !fwd.has(t.track_id));
      if (!ti) { console.log('unknown track', cid); return; }
      const stream = new MediaStream([e.track]);
      if (e.track.kind === 'audio') { const a = document.createElement('audio'); a.autoplay = true; a.srcObject = stream; document.body.appendChild(a); a.play().catch(e => console.log('play', e.message)); }
      fwd.set(ti.track_id, { track: e.track, stream, info: ti, owner: p });
      for (const o of others(p)) addFwd(o, ti.track_id);
    };
    send(p, { type: 'joined', room: p.room, participant: info(p), participants: others(p).map(info) });
    for (const o of others(p)) send(o, { type: 'participant_joined', participant: info(p) });
    for (const [tid, f] of fwd) if (f.owner.room === p.room && f.owner !== p) addFwd(p, tid);
    return;
  }
  if (!p) return;
  switch (m.type) {
    case 'publish': {
      const ti = { track_id: 'TR_' + rnd(), participant_id: p.pid, source: m.source, kind: m.source === 'microphone' ? 'audio' : 'video', muted: !!m.muted };
      p.byCid.set(m.cid, ti); p.tracks.set(ti.track_id, ti);
      send(p, { type: 'publish_accepted', cid: m.cid, track: ti });
      for (const o of others(p)) send(o, { type: 'track_published', track: ti });
      break;
    }
    case 'offer': {
      for (const [mid, cid] of parseMsid(m.sdp)) p.pubMids.set(mid, cid);
      await p.pub.setRemoteDescription({ type: 'offer', sdp: m.sdp });
      const a = await p.pub.createAnswer(); await p.pub.setLocalDescription(a);
      send(p, { type: 'answer', target: 'publisher', sdp: p.pub.localDescription.sdp });
      break;
    }
    case 'answer': {
      await p.sub.setRemoteDescription({ type: 'answer', sdp: m.sdp });
      p.subBusy = false; if (p.subDirty) negotiateSub(p);
      break;
    }
    case 'candidate': {
      const pc = m.target === 'publisher' ? p.pub : p.sub;
      try { if (m.candidate) await pc.addIceCandidate(m.candidate); } catch (e) { console.log('cand', e.message); }
      break;
    }
    case 'mute': {
      const ti = p.tracks.get(m.track_id); if (!ti) break; ti.muted = m.muted;
      for (const o of [p, ...others(p)]) send(o, { type: 'track_muted', participant_id: p.pid, track_id: ti.track_id, muted: m.muted });
      break;
    }
    case 'leave': send(p, { type: 'left', reason: 'client_left' }); remove(p, 'client_left'); window.closeClient(p.conn, 1000); break;
    case 'ping': send(p, { type: 'pong', ts: m.ts }); break;
  }
};
window.clientGone = (conn) => { const p = parts.get(conn); if (p) remove(p, 'signaling_closed'); };

function remove(p, reason) {
  if (!p.joined) return; p.joined = false;
  parts.delete(p.conn); byPid.delete(p.pid);
  p.pub.close(); p.sub.close();
  for (const tid of p.tracks.keys()) {
    fwd.delete(tid);
    for (const o of others(p)) { const s = o.senders.get(tid); if (s) { o.sub.removeTrack(s); o.senders.delete(tid); negotiateSub(o); } send(o, { type: 'track_unpublished', participant_id: p.pid, track_id: tid }); }
  }
  for (const o of others(p)) send(o, { type: 'participant_left', participant_id: p.pid, identity: p.identity, reason });
}
function addFwd(o, tid) {
  const f = fwd.get(tid); if (!f || o.senders.has(tid)) return;
  o.senders.set(tid, o.sub.addTrack(f.track, f.stream));
  negotiateSub(o);
}
async function negotiateSub(o) {
  if (o.subBusy) { o.subDirty = true; return; }
  o.subBusy = true; o.subDirty = false;
  const offer = await o.sub.createOffer(); await o.sub.setLocalDescription(offer);
  let sdp = o.sub.localDescription.sdp;
  for (const [tid, f] of fwd) sdp = sdp.split(f.stream.id).join(tid);
  send(o, { type: 'offer', target: 'subscriber', sdp });
}
