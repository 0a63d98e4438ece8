// The tracks each participant publishes, as the server announces them
// (`track_published`, `track_unpublished`, `track_muted`), our own included.

import { chorus } from './state.js';
import { log } from './notices.js';

export function ownerOf(participantId) {
  if (participantId === chorus.participantId) return chorus.self;
  return chorus.roster.get(participantId) || null;
}

export function upsertTrack(track) {
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

export function removeTrack(participantId, trackId) {
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

export function onTrackMuted(m) {
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

export function trackOf(p, source) {
  return (p.tracks || []).find((t) => t.source === source) || null;
}
