// What each frame from the server does (docs/signaling.md). Every frame is kept in
// `chorus.events`; requests waiting for an answer (signaling.js waitFor) see it first.

import { chorus, render } from './state.js';
import { LEAVE_REASONS, describeError, log, redact, setStatus, showError } from './notices.js';
import { createPcs, requestIceRestart } from './connection.js';
import { onRemoteCandidate } from './candidates.js';
import { onSubscriberOffer } from './negotiation.js';
import { onParticipantJoined, onParticipantLeft, onParticipantState, onRosterPage } from './roster.js';
import { onLobby } from './lobby.js';
import { onMediaUnreachable } from './unreachable.js';
import { onTrackMuted, removeTrack, upsertTrack } from './tracks.js';
import { applyPublisherLayers } from './publish.js';

export function onServerMessage(s, data) {
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
    case 'roster': onRosterPage(m); break;
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
    case 'participant_joined': onParticipantJoined(m); break;
    case 'participant_left': onParticipantLeft(m); break;
    // The lobby: we wait (`lobby`), or, as an admitter, see who waits.
    case 'lobby': onLobby(m); break;
    case 'lobby_waiting': chorus.waiting.set(m.participant_id, m); break;
    case 'lobby_left': chorus.waiting.delete(m.participant_id); break;
    case 'call_state': chorus.callState = m.state; break;
    case 'participant_state': onParticipantState(m); break;
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
    // A track's layers became known or changed (a VP9 SVC camera's spatial layers).
    case 'track_updated': upsertTrack(m.track); break;
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
