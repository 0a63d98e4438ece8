// The remote tiles: one per participant, with its camera (or screen share, shown large)
// and its audio, badges for mute, state and last-N pauses; and the room audio that
// belongs to no tile.

import { $, chorus } from './state.js';
import { log } from './notices.js';
import { trackOf } from './tracks.js';
import { watchTile } from './subscription.js';

export function badge(el, track, onText, offText, noneText) {
  el.textContent = !track ? noneText : track.muted ? offText : onText;
  el.classList.toggle('off', !track || track.muted);
}

/** A tile per participant in the roster, and the audio of no one's track. */
export function renderTiles() {
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
