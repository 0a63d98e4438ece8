// Chorus demo client: plain WebRTC + WebSocket, no libraries.
//
// Protocol (docs/signaling.md): one WebSocket to /v1/rtc?access_token=JWT and two
// RTCPeerConnections per participant. On the *publisher* connection this page offers
// and the server answers; on the *subscriber* connection the server offers (again
// whenever remote tracks come or go) and this page answers. Each connection has
// one offerer, so offers never collide; we still run every SDP step of a
// connection through a promise chain so that they never interleave.
//
// ICE: when a connection stays `disconnected` for 3 s or becomes `failed`, the page
// restarts ICE on it (publisher: `restartIce()` and a new offer; subscriber: it asks the
// server with `ice_restart`, and the server sends a new offer). The server can ask for a
// restart of either connection too (`ice_restart`), and says `media_unreachable` when a connection
// carries nothing; the page shows that until the connection is connected again.
//
// Mute semantics used here: muting sets `track.enabled = false` (the browser sends
// silence / black frames, no renegotiation) and tells the server `mute{track_id}` so
// the others see the state. Camera off works the same way.
//
// Chat: two data channels on the publisher connection, `_reliable` (the chat) and
// `_lossy` (unused here), carrying JSON: {data, topic, to?} out, {from, topic, data}
// in, the sender stamped by the server (docs/signaling.md, "Data messages").
//
// State for tests and debugging lives on `window.chorus`.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  const JOIN_TIMEOUT_MS = 10000;
  /** How long the page waits in a lobby for someone to admit it. */
  const LOBBY_WAIT_MS = 30 * 60 * 1000;
  const REPLY_TIMEOUT_MS = 10000;
  const PING_INTERVAL_MS = 15000;
  /** How long a connection may stay ICE `disconnected` before the page restarts ICE on it. */
  const ICE_DISCONNECTED_RESTART_MS = 3000;
  /** At most one ICE restart per connection this often. */
  const ICE_RESTART_MIN_GAP_MS = 5000;
  /** If a restart did not bring the connection back, try again after this long (doubling up to the max). */
  const ICE_RESTART_RETRY_MS = 10000;
  const ICE_RESTART_RETRY_MAX_MS = 30000;

  const CLOSE_CODES = {
    1000: 'closed normally',
    1001: 'server going away',
    1006: 'connection lost',
    1009: 'message too big',
    4401: 'access token refused',
    4403: 'join refused',
    4500: 'the room failed',
  };

  const LEAVE_REASONS = {
    client_left: 'you left the room',
    signaling_closed: 'the signaling connection closed',
    connection_lost: 'the media connection was lost',
    media_timeout: 'the media connection never came up (a firewall may block UDP)',
    removed_by_server: 'you were removed from the room',
    duplicate_identity: 'you joined the room again from somewhere else',
    room_deleted: 'the room was deleted',
    room_failed: 'the room failed',
    server_shutdown: 'the server is shutting down',
    lobby_rejected: 'you were not let in from the lobby',
  };

  const ERROR_TEXT = {
    token_missing: 'No access token was sent.',
    token_malformed: 'The access token is malformed.',
    token_unknown_key: 'The access token was signed with an unknown API key.',
    token_invalid_signature: 'The access token signature is invalid.',
    token_expired: 'The access token has expired.',
    token_not_yet_valid: 'The access token is not valid yet.',
    token_wrong_room: 'The access token is for another room.',
    room_full: 'The room is full.',
    room_not_found: 'The room does not exist.',
    room_closed: 'The room was closed.',
    invalid_room_name: 'Invalid room name.',
    too_many_rooms: 'The server has too many rooms.',
    server_draining: 'The server is restarting and takes no one new; join again in a moment.',
  };

  const chorus = {
    /** idle | joining | joined | leaving | left | failed */
    state: 'idle',
    room: null,
    participantId: null,
    identity: null,
    /** Own ParticipantInfo as the server last described it. */
    self: null,
    /** participant_id -> ParticipantInfo of everyone else in the room. */
    roster: new Map(),
    /** The last few who left: { who, reason, at }. */
    departures: [],
    /** Waiting in the lobby: { room, count }; null otherwise. */
    lobby: null,
    /** participant_id -> { participant_id, identity, name } waiting in the lobby (for admitters). */
    waiting: new Map(),
    /** Our own call state (`call_state`). */
    callState: null,
    /** track_id -> { trackId, kind, mid, receiver, track, stream } for media on the subscriber connection. */
    remoteTracks: new Map(),
    /** source -> { track, trackId, muted } for own published tracks. */
    localTracks: {},
    localStream: null,
    pubPc: null,
    subPc: null,
    ws: null,
    /** Every server frame (parsed), oldest first, with `at` (ms since page load). */
    events: [],
    /** Errors shown to the user: { code, message, at }. */
    errors: [],
    leftReason: null,
    /** On hold (`hold` sent): nothing sent or received, connections kept. */
    held: false,
    closeCode: null,
    closeReasonText: '',
    lastRttMs: null,
    /** target -> { after_ms, hint, at } while the server says that connection carries no media. */
    mediaUnreachable: {},
    /** ICE restarts this page started: { target, reason, at }. */
    iceRestarts: [],
    /** track_id -> reason of remote videos the server paused for us (last-N). */
    pausedVideos: new Map(),
    /** The screen we share: { track, stream } while sharing. */
    screen: null,
    /** Chat lines, oldest first: { from: identity, participantId, text, private, self, at }. */
    chat: [],
  };
  window.chorus = chorus;

  // One object per join; callbacks of an older session check `s !== session` and stop.
  let session = null;

  // ---------------------------------------------------------------- logging / errors

  function log(...parts) {
    const line = parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
    const el = $('log-lines');
    if (el) {
      const div = document.createElement('div');
      div.textContent = `${(performance.now() / 1000).toFixed(2)} ${line}`;
      el.appendChild(div);
      while (el.childNodes.length > 500) el.removeChild(el.firstChild);
    }
    console.log('[chorus]', line);
  }

  function redact(msg) {
    if (msg && typeof msg.sdp === 'string') return { ...msg, sdp: `<${msg.sdp.length} bytes>` };
    return msg;
  }

  function showError(text, code) {
    chorus.errors.push({ code: code || null, message: text, at: performance.now() });
    const el = $('error');
    el.textContent = text;
    el.classList.add('shown');
    log('ERROR', text);
  }

  function clearError() {
    const el = $('error');
    el.textContent = '';
    el.classList.remove('shown');
  }

  function setStatus(text) {
    $('status').textContent = text;
  }

  function describeError(code, message) {
    const known = ERROR_TEXT[code];
    return `${known || message || code}${known && message ? ` (${message})` : ''} [${code}]`;
  }

  // ---------------------------------------------------------------- signaling

  function send(msg) {
    const s = session;
    if (!s || !s.ws || s.ws.readyState !== WebSocket.OPEN) return false;
    s.ws.send(JSON.stringify(msg));
    if (msg.type !== 'ping' && msg.type !== 'candidate') log('→', redact(msg));
    return true;
  }

  /** Resolves with the first server frame matching `pred`; rejects after `ms` or when the session ends. */
  function waitFor(s, pred, ms, what) {
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (m) => { clearTimeout(w.timer); resolve(m); },
        reject: (e) => { clearTimeout(w.timer); reject(e); },
      };
      w.timer = setTimeout(() => {
        s.waiters.delete(w);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      s.waiters.add(w);
    });
  }

  function onServerMessage(s, data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch (e) {
      log('bad frame', String(data).slice(0, 200));
      return;
    }
    m.at = performance.now();
    chorus.events.push(m);
    if (chorus.events.length > 5000) chorus.events.splice(0, 1000);
    if (m.type !== 'candidate' && m.type !== 'pong') log('←', redact(m));

    for (const w of [...s.waiters]) {
      if (w.pred(m)) {
        s.waiters.delete(w);
        w.resolve(m);
      }
    }

    switch (m.type) {
      case 'joined': onJoined(s, m); break;
      // The rest of a large roster, in pages right after `joined`.
      case 'roster':
        for (const p of m.participants || []) chorus.roster.set(p.participant_id, p);
        break;
      case 'offer':
        if (m.target === 'subscriber') onSubscriberOffer(s, m.sdp);
        else log('unexpected offer for', m.target);
        break;
      case 'answer':
        // Publisher answers are consumed by the waiter in negotiatePublisher().
        if (m.target !== 'publisher') log('unexpected answer for', m.target);
        break;
      case 'candidate': onRemoteCandidate(s, m.target, m.candidate); break;
      case 'publish_accepted': break; // consumed by the waiter in publishTrack()
      case 'participant_joined':
        if (m.participant.participant_id !== chorus.participantId) {
          chorus.roster.set(m.participant.participant_id, m.participant);
        }
        break;
      case 'participant_left': {
        const p = chorus.roster.get(m.participant_id);
        chorus.roster.delete(m.participant_id);
        const who = p ? p.name || p.identity : m.identity;
        log(`${who} left: ${m.reason}`);
        // Why people left, shown a while under the roster.
        chorus.departures.unshift({ who, reason: m.reason, at: Date.now() });
        chorus.departures.length = Math.min(chorus.departures.length, 5);
        break;
      }
      // The lobby: we wait (`lobby`), or, as an admitter, see who waits.
      case 'lobby':
        chorus.lobby = { room: m.room, count: m.num_participants };
        chorus.participantId = m.participant_id;
        setStatus(`waiting in the lobby of “${m.room}” (${m.num_participants} in the room)`);
        break;
      case 'lobby_waiting': chorus.waiting.set(m.participant_id, m); break;
      case 'lobby_left': chorus.waiting.delete(m.participant_id); break;
      case 'call_state': chorus.callState = m.state; break;
      case 'participant_state': {
        const p = m.participant_id === chorus.participantId ? chorus.self : chorus.roster.get(m.participant_id);
        if (p) p.state = m.state;
        if (p && m.reason) p.reason = m.reason;
        // The server hears us again: whatever it said was unreachable is not any more.
        if (m.participant_id === chorus.participantId && m.state === 'connected') clearUnreachable(null);
        break;
      }
      case 'ice_restart':
        // The server heard nothing on that connection although signaling is alive.
        // Publisher: a new offer with new credentials; subscriber: `ice_restart` back,
        // and the server sends one.
        if (m.target === 'publisher' || m.target === 'subscriber') {
          requestIceRestart(s, m.target, 'the server asked for it', true);
        }
        break;
      case 'media_unreachable': onMediaUnreachable(m); break;
      case 'draining':
        // A rolling restart: this server stops soon. A real app rejoins through its
        // signaling service (another server); the demo says so.
        showError(`The server is restarting: this call ends within ${Math.ceil(m.within_ms / 1000)} s. Join again to continue.`, 'server_draining');
        break;
      case 'track_published': upsertTrack(m.track); break;
      case 'track_unpublished': removeTrack(m.participant_id, m.track_id); break;
      case 'track_muted': onTrackMuted(m); break;
      case 'active_speakers':
        chorus.speakers = new Set((m.speakers || []).map((x) => x.participant_id));
        render();
        break;
      // Last-N: the server stopped (or started again) sending one of the videos we receive.
      case 'video_paused': chorus.pausedVideos.set(m.track_id, m.reason); break;
      case 'video_resumed': chorus.pausedVideos.delete(m.track_id); break;
      case 'publisher_layers': applyPublisherLayers(m); break;
      case 'permissions_changed':
        if (chorus.self) chorus.self.grants = m.grants;
        log('permissions changed', m.grants);
        break;
      case 'left':
        chorus.leftReason = m.reason;
        if (m.reason !== 'client_left') {
          // A removal may carry the control API's words.
          const why = m.message ? ` "${m.message}"` : '';
          showError(`You are out of the room: ${LEAVE_REASONS[m.reason] || m.reason}.${why}`, m.reason);
        }
        break;
      case 'pong':
        if (m.ts) chorus.lastRttMs = Date.now() - m.ts;
        break;
      case 'error':
        // A tile's settings can cross its track going away: nothing to show for it.
        if (m.code === 'not_subscribed') {
          log('track settings for a track no longer received', m.message);
          break;
        }
        showError(describeError(m.code, m.message), m.code);
        break;
      default:
        log('unknown frame type', m.type);
    }
    render();
  }

  /**
   * Both connections, made when `joined` arrives (with its `ice_servers`) and before the
   * next frame is handled, so that a subscriber offer right after `joined` finds its
   * connection.
   */
  function createPcs(s, iceServers) {
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

  function onChatMessage(text) {
    let m;
    try { m = JSON.parse(text); } catch (e) { log('unreadable data message'); return; }
    if (!m || !m.from || m.topic !== 'chat' || !m.data || typeof m.data.text !== 'string') return;
    chorus.chat.push({
      from: m.from.identity, participantId: m.from.participant_id, text: m.data.text,
      private: !!m.private, self: false, at: Math.round(performance.now()),
    });
    render();
  }

  /** Sends a chat line to the room (or to `toIdentities`); false if the chat is not open. */
  function sendChat(text, toIdentities) {
    const s = session;
    if (!s || !s.chat || s.chat.readyState !== 'open' || !text) return false;
    const msg = { topic: 'chat', data: { text } };
    if (toIdentities && toIdentities.length) msg.to = toIdentities;
    s.chat.send(JSON.stringify(msg));
    chorus.chat.push({
      from: chorus.identity, participantId: chorus.participantId, text,
      private: !!msg.to, self: true, at: Math.round(performance.now()),
    });
    render();
    return true;
  }
  chorus.sendChat = sendChat;

  function onJoined(s, m) {
    if (!s.pubPc) createPcs(s, m.ice_servers || []);
    chorus.lobby = null;
    chorus.room = m.room;
    chorus.self = m.participant;
    chorus.participantId = m.participant.participant_id;
    chorus.identity = m.participant.identity;
    chorus.roster.clear();
    for (const p of m.participants || []) chorus.roster.set(p.participant_id, p);
    chorus.state = 'joined';
    s.joined = true;
    setStatus(`in room “${m.room}” as ${m.participant.name || m.participant.identity}`);
  }

  function ownerOf(participantId) {
    if (participantId === chorus.participantId) return chorus.self;
    return chorus.roster.get(participantId) || null;
  }

  function upsertTrack(track) {
    const p = ownerOf(track.participant_id);
    if (!p) {
      log('track_published for unknown participant', track.participant_id);
      return;
    }
    p.tracks = p.tracks || [];
    const i = p.tracks.findIndex((t) => t.track_id === track.track_id);
    if (i >= 0) p.tracks[i] = track;
    else p.tracks.push(track);
  }

  function removeTrack(participantId, trackId) {
    const p = ownerOf(participantId);
    if (p && p.tracks) p.tracks = p.tracks.filter((t) => t.track_id !== trackId);
    if (participantId === chorus.participantId) {
      // The server took one of our tracks away (e.g. permissions changed).
      for (const [source, lt] of Object.entries(chorus.localTracks)) {
        if (lt.trackId === trackId) {
          log(`server unpublished our ${source}`);
          lt.trackId = null;
        }
      }
    }
  }

  function onTrackMuted(m) {
    const p = ownerOf(m.participant_id);
    const t = p && p.tracks && p.tracks.find((x) => x.track_id === m.track_id);
    if (t) t.muted = m.muted;
    if (m.participant_id === chorus.participantId) {
      // Muted (or unmuted) by the server: follow it locally.
      for (const lt of Object.values(chorus.localTracks)) {
        if (lt.trackId === m.track_id) {
          lt.muted = m.muted;
          lt.track.enabled = !m.muted;
        }
      }
    }
  }

  // ---------------------------------------------------------------- ICE candidates

  function candidateInit(c) {
    const init = { candidate: c.candidate || '' };
    if (c.sdpMid !== undefined && c.sdpMid !== null) init.sdpMid = c.sdpMid;
    if (c.sdpMLineIndex !== undefined && c.sdpMLineIndex !== null) init.sdpMLineIndex = c.sdpMLineIndex;
    if (init.sdpMid === undefined && init.sdpMLineIndex === undefined) init.sdpMLineIndex = 0;
    if (c.usernameFragment) init.usernameFragment = c.usernameFragment;
    return init;
  }

  async function addRemoteCandidate(pc, cand) {
    try {
      if (cand) await pc.addIceCandidate(candidateInit(cand));
      else await pc.addIceCandidate(); // end of candidates
    } catch (e) {
      if (cand) log('addIceCandidate failed', e.message, cand.candidate);
    }
  }

  function onRemoteCandidate(s, target, cand) {
    const pc = target === 'publisher' ? s.pubPc : target === 'subscriber' ? s.subPc : null;
    if (!pc) return;
    // Until the remote description is set the candidate cannot be applied: queue it.
    if (!pc.remoteDescription || s.applying[target]) s.remoteCandidates[target].push(cand);
    else addRemoteCandidate(pc, cand);
  }

  async function flushRemoteCandidates(s, target) {
    const pc = target === 'publisher' ? s.pubPc : s.subPc;
    const queued = s.remoteCandidates[target].splice(0);
    for (const c of queued) await addRemoteCandidate(pc, c);
  }

  function onLocalCandidate(s, target, cand) {
    if (s !== session) return;
    const json = cand ? cand.toJSON() : null;
    if (json && !json.candidate) return; // Chrome's empty end-of-generation marker
    // Candidates may only follow the SDP they belong to.
    if (!s.localSent[target]) s.localCandidates[target].push(json);
    else send({ type: 'candidate', target, candidate: json });
  }

  function flushLocalCandidates(s, target) {
    s.localSent[target] = true;
    for (const c of s.localCandidates[target].splice(0)) send({ type: 'candidate', target, candidate: c });
  }

  // ---------------------------------------------------------------- peer connections

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
  function requestIceRestart(s, target, reason, force) {
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

  // ---------------------------------------------------------------- media unreachable

  function onMediaUnreachable(m) {
    chorus.mediaUnreachable[m.target] = { after_ms: m.after_ms, hint: m.hint || '', at: performance.now() };
    render();
  }

  /** Clears the notice for `target`, or for every connection when `target` is null. */
  function clearUnreachable(target) {
    const had = Object.keys(chorus.mediaUnreachable).length;
    if (target) delete chorus.mediaUnreachable[target];
    else chorus.mediaUnreachable = {};
    if (had !== Object.keys(chorus.mediaUnreachable).length) render();
  }

  /** Chained so that no two SDP operations of one connection interleave. */
  function enqueue(s, target, job) {
    const p = s.chain[target].then(() => (s === session ? job() : undefined));
    s.chain[target] = p.catch((e) => {
      if (s !== session || s.leaving) return;
      showError(`Negotiation on the ${target} connection failed: ${e.message}`, 'negotiation_failed');
    });
    return p;
  }

  function negotiatePublisher(s, opts) {
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

  function onSubscriberOffer(s, sdp) {
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
  function parseSections(sdp) {
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

  // ---------------------------------------------------------------- publishing

  async function publishTrack(s, track, source, stream) {
    const reply = waitFor(
      s,
      (m) => (m.type === 'publish_accepted' && m.cid === track.id) || m.type === 'error',
      REPLY_TIMEOUT_MS,
      `publish_accepted for the ${source}`,
    );
    send({ type: 'publish', cid: track.id, source, muted: !track.enabled });
    const m = await reply;
    if (m.type === 'error') throw new Error(`the server refused the ${source}: ${describeError(m.code, m.message)}`);
    chorus.localTracks[source] = { track, trackId: m.track.track_id, muted: !track.enabled };
    upsertTrack(m.track);
    const init = { direction: 'sendonly', streams: [stream || chorus.localStream] };
    if (source === 'camera' && simulcastWanted()) init.sendEncodings = SIMULCAST_ENCODINGS;
    s.pubPc.addTransceiver(track, init);
    if (track.kind === 'video') preferCodec(s.pubPc, track, videoCodec());
    if (track.kind === 'audio') preferCodec(s.pubPc, track, 'audio/opus');
  }

  /**
   * The camera's simulcast layers, lowest quality first as the server expects
   * (docs/signaling.md, "Simulcast"): a quarter, half and full of the capture size. The
   * server forwards each subscriber the one that fits its tile (`track_settings`) and
   * says which nobody needs (`publisher_layers`, applied by applyPublisherLayers).
   */
  const SIMULCAST_ENCODINGS = [
    { rid: 'q', scaleResolutionDownBy: 4 },
    { rid: 'h', scaleResolutionDownBy: 2 },
    { rid: 'f' },
  ];

  // The camera goes out in three simulcast layers when the page's address says
  // `?simulcast=1`, else as one stream. Not the default yet: with every page sending
  // simulcast, the browser end-to-end test sees videos stop for a subscriber (the
  // server's bandwidth allocation; docs/BENCHMARKS.md, "Simulcast with a tile view").
  function simulcastWanted() {
    const asked = new URLSearchParams(location.search).get('simulcast');
    return asked === '1' || asked === 'on' || asked === 'true';
  }

  // The video codec to send: VP8, or H.264 with `?codec=h264` in the page's address.
  function videoCodec() {
    const asked = new URLSearchParams(location.search).get('codec');
    return asked && asked.toLowerCase() === 'h264' ? 'video/H264' : 'video/VP8';
  }

  function preferCodec(pc, track, mime) {
    try {
      const tr = pc.getTransceivers().find((t) => t.sender && t.sender.track === track);
      // Chrome checks preferences against the receiver capabilities.
      const caps = RTCRtpReceiver.getCapabilities(track.kind);
      if (!tr || !caps || !tr.setCodecPreferences) return;
      const want = mime.toLowerCase();
      const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === want);
      const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== want);
      if (first.length) tr.setCodecPreferences([...first, ...rest]);
    } catch (e) {
      log('setCodecPreferences failed', e.message);
    }
  }

  /**
   * Dynacast (`publisher_layers`): turns the simulcast encodings of one of our tracks on
   * or off as the server says nobody (or somebody) receives them.
   */
  function applyPublisherLayers(m) {
    const lt = Object.values(chorus.localTracks).find((t) => t.trackId === m.track_id);
    const sender = lt && chorus.pubPc && chorus.pubPc.getSenders().find((x) => x.track === lt.track);
    if (!sender) return;
    const params = sender.getParameters();
    let changed = false;
    for (const enc of params.encodings || []) {
      const layer = (m.layers || []).find((l) => l.rid === enc.rid);
      if (layer && enc.active !== layer.active) {
        enc.active = layer.active;
        changed = true;
      }
    }
    if (changed) sender.setParameters(params).catch((e) => log('setParameters failed', e.message));
  }

  /**
   * Shares a screen (getDisplayMedia) as the `screen_share` source, with its sound as
   * `screen_share_audio` where the browser gives one (a tab's audio), or stops sharing.
   */
  async function toggleScreen() {
    const s = session;
    if (!s || !s.joined) return;
    if (chorus.screen) {
      stopScreen(s);
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
    } catch (e) {
      log(`screen share not started: ${e.name}: ${e.message}`);
      return;
    }
    const track = stream.getVideoTracks()[0];
    if (!track || s !== session) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    chorus.screen = { track, stream };
    // The browser's own "Stop sharing" button ends the track.
    track.onended = () => { if (chorus.screen && chorus.screen.track === track) stopScreen(s); };
    try {
      await publishTrack(s, track, 'screen_share', stream);
      const sound = stream.getAudioTracks()[0];
      if (sound) await publishTrack(s, sound, 'screen_share_audio', stream);
      await negotiatePublisher(s);
    } catch (e) {
      showError(`Could not share the screen: ${e.message}`, 'publish_failed');
      stopScreen(s);
    }
    render();
  }

  function stopScreen(s) {
    const sc = chorus.screen;
    chorus.screen = null;
    if (!sc) return;
    sc.stream.getTracks().forEach((t) => t.stop());
    let removed = false;
    for (const source of ['screen_share', 'screen_share_audio']) {
      const lt = chorus.localTracks[source];
      delete chorus.localTracks[source];
      if (!lt) continue;
      if (lt.trackId) {
        send({ type: 'unpublish', track_id: lt.trackId });
        removeTrack(chorus.participantId, lt.trackId);
      }
      const sender = s.pubPc && s.pubPc.getSenders().find((x) => x.track === lt.track);
      if (sender && s === session && !s.leaving) {
        s.pubPc.removeTrack(sender);
        removed = true;
      }
    }
    if (removed) negotiatePublisher(s).catch(() => {});
    render();
  }

  /** Hold: the server stops media both ways; we stop sending too (tracks disabled,
   *  no renegotiation). Unhold: tracks as their mute says, video back from a keyframe. */
  function setHold(held) {
    if (!session || !session.joined || chorus.held === held) return;
    chorus.held = held;
    for (const lt of Object.values(chorus.localTracks)) lt.track.enabled = !held && !lt.muted;
    send({ type: held ? 'hold' : 'unhold' });
    render();
  }

  async function setMuted(source, muted) {
    const lt = chorus.localTracks[source];
    if (!lt) return;
    lt.muted = muted;
    lt.track.enabled = !muted && !chorus.held;
    if (lt.trackId) send({ type: 'mute', track_id: lt.trackId, muted });
    const t = chorus.self && chorus.self.tracks && chorus.self.tracks.find((x) => x.track_id === lt.trackId);
    if (t) t.muted = muted;
    render();
  }

  // ---------------------------------------------------------------- join / leave

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

  // 720p where the camera has it: browsers send three simulcast layers only from
  // about 960x540 up (fewer below), and the top layer is what a large tile shows.
  function videoConstraints() {
    return simulcastWanted()
      ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }
      : { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };
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

  async function join(room, name) {
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
      ice: {
        publisher: { disconnectedTimer: null, retryTimer: null, deferTimer: null, lastAt: null, retryMs: ICE_RESTART_RETRY_MS },
        subscriber: { disconnectedTimer: null, retryTimer: null, deferTimer: null, lastAt: null, retryMs: ICE_RESTART_RETRY_MS },
      },
      pingTimer: null,
      closed: null,
    };
    session = s;
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

  function closeText(code, reason) {
    if (code == null) return 'the signaling connection closed';
    const what = CLOSE_CODES[code] || 'closed';
    return `signaling closed: ${what} (code ${code}${reason ? `, ${reason}` : ''})`;
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

  async function leave() {
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
    session = null;
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

  // ---------------------------------------------------------------- stats (for tests and the UI)

  /**
   * Inbound media per remote participant, from the subscriber connection:
   * { byParticipant: { [participant_id]: { audio, video } }, unmapped: { audio, video } }
   * where audio = { packetsReceived, totalSamplesReceived, bytesReceived, tracks } and
   * video = { packetsReceived, framesDecoded, framesReceived, frameWidth, frameHeight, bytesReceived, tracks }.
   * Tracks whose stream id is not an announced track_id (e.g. a mixed audio stream) go to `unmapped`.
   */
  async function inboundStats() {
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
  async function transportStats() {
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
  function snapshot() {
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

  /** Last-N (docs/signaling.md): how many cameras to receive, and whose first. */
  const setLastN = (n) => send({ type: 'set_last_n', last_n: n });
  const setPins = (participantIds) => send({ type: 'set_pins', participant_ids: participantIds });

  Object.assign(chorus, { join, leave, setMuted, setHold, toggleScreen, setLastN, setPins, inboundStats, transportStats, snapshot, parseSections, videoConstraints });

  // ---------------------------------------------------------------- rendering

  let renderQueued = false;
  function render() {
    if (renderQueued) return;
    renderQueued = true;
    queueMicrotask(() => {
      renderQueued = false;
      renderNow();
    });
  }

  function trackOf(p, source) {
    return (p.tracks || []).find((t) => t.source === source) || null;
  }

  function badge(el, track, onText, offText, noneText) {
    el.textContent = !track ? noneText : track.muted ? offText : onText;
    el.classList.toggle('off', !track || track.muted);
  }

  function renderChat() {
    $('chat-send').disabled = !chorus.chatOpen;
    const list = $('chat-log');
    if (list.children.length > chorus.chat.length) list.textContent = ''; // a new session
    // Lines are only ever added: append what is new.
    for (const line of chorus.chat.slice(list.children.length)) {
      const li = document.createElement('li');
      if (line.private) li.classList.add('private');
      const who = document.createElement('b');
      const p = chorus.roster.get(line.participantId);
      who.textContent = line.self ? 'you' : (p && p.name) || line.from;
      li.append(who, `: ${line.text}`);
      list.append(li);
      list.scrollTop = list.scrollHeight;
    }
  }

  function renderNow() {
    const inCall = !!session && chorus.state !== 'joining' && !chorus.lobby;
    $('call').classList.toggle('shown', inCall || chorus.state === 'leaving');
    $('join-form').style.display = session ? 'none' : '';
    document.body.dataset.state = chorus.state;

    // Own tile and buttons.
    const self = chorus.self;
    $('self-name').textContent = self ? `${self.name || self.identity} (you)` : '';
    const mic = chorus.localTracks.microphone;
    const cam = chorus.localTracks.camera;
    const micBtn = $('mic');
    micBtn.disabled = !mic;
    micBtn.textContent = mic && mic.muted ? 'Unmute mic' : 'Mute mic';
    micBtn.setAttribute('aria-pressed', String(!!(mic && mic.muted)));
    const camBtn = $('cam');
    camBtn.disabled = !cam;
    camBtn.textContent = cam && cam.muted ? 'Camera on' : 'Camera off';
    camBtn.setAttribute('aria-pressed', String(!!(cam && cam.muted)));
    $('leave').disabled = !session || session.leaving;
    renderChat();
    const holdBtn = $('hold');
    holdBtn.disabled = !session || !session.joined;
    holdBtn.textContent = chorus.held ? 'Resume' : 'Hold';
    holdBtn.setAttribute('aria-pressed', String(chorus.held));
    const shareBtn = $('share');
    shareBtn.disabled = !session || !session.joined || !navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia;
    shareBtn.textContent = chorus.screen ? 'Stop sharing' : 'Share screen';
    shareBtn.setAttribute('aria-pressed', String(!!chorus.screen));
    const selfTile = $('self-tile');
    const selfMic = selfTile.querySelector('[data-testid="self-mic-state"]');
    const selfCam = selfTile.querySelector('[data-testid="self-cam-state"]');
    badge(selfMic, mic ? { muted: mic.muted } : null, 'mic on', 'mic muted', 'no mic');
    badge(selfCam, cam ? { muted: cam.muted } : null, 'cam on', 'cam off', 'no cam');
    selfTile.classList.toggle('no-video', !cam || cam.muted);
    if (self) {
      selfTile.dataset.participantId = self.participant_id;
      selfTile.dataset.state = self.state || '';
    }

    // Roster.
    const roster = $('roster');
    roster.textContent = '';
    const people = [...chorus.roster.values()].sort((a, b) => (a.joined_at_ms || 0) - (b.joined_at_ms || 0));
    if (self) people.unshift(self);
    for (const p of people) {
      const li = document.createElement('li');
      li.dataset.participantId = p.participant_id;
      li.dataset.testid = 'roster-item';
      if (p === self) li.dataset.self = 'true';
      const name = document.createElement('span');
      name.textContent = `${p.name || p.identity}${p === self ? ' (you)' : ''}`;
      const st = document.createElement('span');
      st.className = 'state';
      const m = trackOf(p, 'microphone');
      const noMedia = p === self && Object.keys(chorus.mediaUnreachable).length > 0;
      st.textContent = `${p.state || ''}${noMedia ? ' · no media' : ''}${m && m.muted ? ' · muted' : ''}`;
      li.append(name, st);
      roster.appendChild(li);
    }
    $('roster-count').textContent = String(people.length);
    const gone = $('departures');
    gone.textContent = '';
    for (const d of chorus.departures) {
      const li = document.createElement('li');
      li.textContent = `${d.who} left: ${d.reason.replace(/_/g, ' ')}`;
      gone.appendChild(li);
    }

    // The lobby: waiting in it, or admitting those who wait.
    const waitingHere = !!session && !!chorus.lobby && !session.joined;
    $('lobby-panel').hidden = !waitingHere;
    if (waitingHere) {
      $('lobby-text').textContent = `Waiting in the lobby of “${chorus.lobby.room}”: ${chorus.lobby.count} in the room. Someone in the room lets you in.`;
    }
    const admit = $('lobby-admit');
    admit.hidden = chorus.waiting.size === 0;
    const list = $('lobby-list');
    list.textContent = '';
    for (const w of chorus.waiting.values()) {
      const li = document.createElement('li');
      li.dataset.testid = 'lobby-item';
      li.dataset.participantId = w.participant_id;
      const name = document.createElement('span');
      name.textContent = w.name || w.identity;
      const yes = document.createElement('button');
      yes.type = 'button';
      yes.textContent = 'Admit';
      yes.dataset.testid = 'admit-button';
      yes.onclick = () => send({ type: 'admit', participant_id: w.participant_id });
      const no = document.createElement('button');
      no.type = 'button';
      no.textContent = 'Reject';
      no.dataset.testid = 'reject-button';
      no.onclick = () => send({ type: 'reject', participant_id: w.participant_id });
      li.append(name, ' ', yes, ' ', no);
      list.appendChild(li);
    }

    renderUnreachable();

    // Remote tiles.
    const stage = $('stage');
    const existing = new Map();
    for (const el of stage.querySelectorAll('.tile.remote')) existing.set(el.dataset.participantId, el);
    for (const p of chorus.roster.values()) {
      let tile = existing.get(p.participant_id);
      existing.delete(p.participant_id);
      if (!tile) {
        tile = createTile(p);
        stage.appendChild(tile);
      }
      updateTile(tile, p);
    }
    for (const el of existing.values()) {
      for (const media of el.querySelectorAll('video, audio')) media.srcObject = null;
      el.remove();
    }

    // Audio that belongs to no announced track (e.g. a mixed room stream) still has to play.
    const owned = new Set();
    for (const p of chorus.roster.values()) for (const t of p.tracks || []) owned.add(t.track_id);
    let box = $('room-audio');
    if (!box) {
      box = document.createElement('div');
      box.id = 'room-audio';
      box.dataset.testid = 'room-audio';
      box.hidden = true;
      document.body.appendChild(box);
    }
    const want = [...chorus.remoteTracks.values()].filter((r) => r.kind === 'audio' && !owned.has(r.trackId));
    syncMedia(box, 'audio', want, () => null);
  }

  const TARGET_TEXT = {
    publisher: 'sending (publisher)',
    subscriber: 'receiving (subscriber)',
  };

  /** The media-unreachable notice: one line per connection the server says carries nothing. */
  function renderUnreachable() {
    const box = $('media-notice');
    if (!box) return;
    const entries = session ? Object.entries(chorus.mediaUnreachable) : [];
    box.classList.toggle('shown', entries.length > 0);
    box.dataset.targets = entries.map(([t]) => t).join(' ');
    const have = new Map();
    for (const el of box.querySelectorAll('[data-target]')) have.set(el.dataset.target, el);
    for (const [target, u] of entries) {
      let el = have.get(target);
      have.delete(target);
      if (!el) {
        el = document.createElement('div');
        el.dataset.target = target;
        box.appendChild(el);
      }
      const secs = Math.round((u.after_ms || 0) / 100) / 10;
      let hint = (u.hint || '').trim();
      if (hint) hint = ` ${hint[0].toUpperCase()}${hint.slice(1)}${/[.!?]$/.test(hint) ? '' : '.'}`;
      const text = `Media cannot reach the server: nothing on the ${TARGET_TEXT[target] || target} connection ` +
        `for ${secs} s.${hint} You are still in the room.`;
      if (el.textContent !== text) el.textContent = text;
    }
    for (const el of have.values()) el.remove();
  }

  function createTile(p) {
    const tile = document.createElement('div');
    tile.className = 'tile remote no-video';
    tile.dataset.participantId = p.participant_id;
    tile.dataset.testid = 'remote-tile';
    tile.innerHTML = '<div class="placeholder"></div>' +
      '<div class="label"><span class="name" data-testid="tile-name"></span>' +
      '<span class="badge" data-testid="mic-state"></span>' +
      '<span class="badge" data-testid="cam-state"></span>' +
      '<span class="badge" data-testid="participant-state"></span>' +
      '<span class="badge off" data-testid="video-paused"></span></div>';
    return tile;
  }

  function updateTile(tile, p) {
    const label = p.name || p.identity || p.participant_id;
    tile.querySelector('[data-testid="tile-name"]').textContent = label;
    tile.querySelector('.placeholder').textContent = (label[0] || '?').toUpperCase();
    tile.dataset.state = p.state || '';
    tile.classList.toggle('speaking', !!(chorus.speakers && chorus.speakers.has(p.participant_id)));
    const mic = trackOf(p, 'microphone');
    const cam = trackOf(p, 'camera');
    badge(tile.querySelector('[data-testid="mic-state"]'), mic, 'mic on', 'mic muted', 'no mic');
    badge(tile.querySelector('[data-testid="cam-state"]'), cam, 'cam on', 'cam off', 'no cam');
    tile.dataset.micMuted = String(!mic || !!mic.muted);
    tile.dataset.camMuted = String(!cam || !!cam.muted);
    const ps = tile.querySelector('[data-testid="participant-state"]');
    ps.textContent = p.state && p.state !== 'connected' ? p.state : '';
    ps.style.display = ps.textContent ? '' : 'none';

    const media = [];
    for (const t of p.tracks || []) {
      const rt = chorus.remoteTracks.get(t.track_id);
      if (rt) media.push(Object.assign({}, rt, { source: t.source }));
    }
    const videos = media.filter((m) => m.kind === 'video');
    const audios = media.filter((m) => m.kind === 'audio');
    syncMedia(tile, 'video', videos, (m) => (m.source === 'screen_share' ? 'screen' : 'camera'));
    syncMedia(tile, 'audio', audios, () => null);
    const camVideo = videos.find((m) => m.source === 'camera');
    tile.classList.toggle('no-video', !camVideo || (cam && cam.muted));
    // A remote screen share is shown large: its tile spans the stage, the camera small.
    tile.classList.toggle('has-screen', videos.some((m) => m.source === 'screen_share'));
    // Last-N: a camera the server paused for us (not torn down) is shown as paused.
    const paused = !!(cam && chorus.pausedVideos.has(cam.track_id));
    tile.classList.toggle('paused', paused);
    tile.dataset.videoPaused = String(paused);
    const pb = tile.querySelector('[data-testid="video-paused"]');
    pb.textContent = paused ? 'paused' : '';
    pb.style.display = paused ? '' : 'none';
    pb.title = paused ? 'Not among the last speakers: the server pauses this video (last-N)' : '';
  }

  // ------------------------------------------------------ what each tile shows

  /** track_id -> the last `track_settings` sent, as JSON (nothing is sent twice). */
  const tileSettings = new Map();
  const tileTimers = new Map();
  const tileResize = typeof ResizeObserver === 'function' ? new ResizeObserver((es) => es.forEach((e) => tileChanged(e.target))) : null;
  const tileVisible = typeof IntersectionObserver === 'function' ? new IntersectionObserver((es) => es.forEach((e) => tileChanged(e.target, e.isIntersecting))) : null;

  /**
   * Tells the server the size a remote video is shown at and whether it is on screen, so
   * that it sends the simulcast layer that fits (`track_settings`, docs/signaling.md).
   */
  function watchTile(el) {
    el.dataset.visible = 'true';
    if (tileResize) tileResize.observe(el);
    if (tileVisible) tileVisible.observe(el);
    tileChanged(el);
  }

  function tileChanged(el, visible) {
    if (visible !== undefined) el.dataset.visible = String(visible);
    const trackId = el.dataset.trackId;
    if (!trackId) return;
    // Layouts settle over a few frames: one message per tile per change burst.
    clearTimeout(tileTimers.get(trackId));
    tileTimers.set(trackId, setTimeout(() => sendTileSettings(el, trackId), 250));
  }

  function sendTileSettings(el, trackId) {
    tileTimers.delete(trackId);
    if (!el.isConnected) {
      tileSettings.delete(trackId);
      if (tileResize) tileResize.unobserve(el);
      if (tileVisible) tileVisible.unobserve(el);
      return;
    }
    const dpr = window.devicePixelRatio || 1;
    const settings = {
      type: 'track_settings',
      track_id: trackId,
      width: Math.round(el.clientWidth * dpr),
      height: Math.round(el.clientHeight * dpr),
      visible: el.dataset.visible !== 'false' && el.clientWidth > 0,
    };
    const json = JSON.stringify(settings);
    if (tileSettings.get(trackId) === json) return;
    if (send(settings)) tileSettings.set(trackId, json);
  }

  /** Keeps one <video>/<audio> element per wanted track inside `parent`. */
  function syncMedia(parent, tag, wanted, classOf) {
    const have = new Map();
    for (const el of parent.querySelectorAll(`:scope > ${tag}[data-track-id]`)) have.set(el.dataset.trackId, el);
    for (const m of wanted) {
      let el = have.get(m.trackId);
      have.delete(m.trackId);
      if (!el) {
        el = document.createElement(tag);
        el.dataset.trackId = m.trackId;
        el.dataset.testid = tag === 'video' ? 'remote-video' : 'remote-audio';
        el.autoplay = true;
        if (tag === 'video') {
          el.muted = true; // audio plays through the <audio> elements
          el.playsInline = true;
        }
        const cls = classOf(m);
        if (cls) el.className = cls;
        if (tag === 'video') {
          parent.insertBefore(el, parent.firstChild);
          watchTile(el);
        } else parent.appendChild(el);
      }
      if (el.srcObject !== m.stream) {
        el.srcObject = m.stream;
        const p = el.play();
        if (p && p.catch) p.catch((e) => log(`cannot play ${tag}: ${e.message}`));
      }
    }
    for (const el of have.values()) {
      el.srcObject = null;
      el.remove();
    }
  }

  // ---------------------------------------------------------------- wiring

  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const room = $('room').value.trim();
    const name = $('name').value.trim();
    if (!room || !name) {
      showError('Enter a room and your name.', 'form');
      return;
    }
    if (session) return;
    join(room, name).catch((err) => showError(`Could not join: ${err.message}`, 'join_failed'));
  });
  $('mic').addEventListener('click', () => {
    const lt = chorus.localTracks.microphone;
    if (lt) setMuted('microphone', !lt.muted);
  });
  $('cam').addEventListener('click', () => {
    const lt = chorus.localTracks.camera;
    if (lt) setMuted('camera', !lt.muted);
  });
  $('leave').addEventListener('click', () => leave());
  $('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('chat-input');
    if (sendChat(input.value.trim())) input.value = '';
  });
  $('hold').addEventListener('click', () => setHold(!chorus.held));
  $('share').addEventListener('click', () => toggleScreen());
  window.addEventListener('pagehide', () => {
    if (session) send({ type: 'leave' });
  });

  const params = new URLSearchParams(location.search);
  if (params.get('room')) $('room').value = params.get('room');
  if (params.get('name')) $('name').value = params.get('name');
  render();
})();
