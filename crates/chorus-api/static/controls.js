// The call's own controls: mute the microphone, camera off, hold. Muting sets
// `track.enabled = false` (the browser sends silence / black frames, no renegotiation) and
// tells the server `mute{track_id}` so the others see the state; camera off is the same.
// Also draws the buttons and the own tile.

import { $, chorus, render, session } from './state.js';
import { send } from './signaling.js';
import { badge } from './tiles.js';

/** Hold: the server stops media both ways; we stop sending too (tracks disabled,
 *  no renegotiation). Unhold: tracks as their mute says, video back from a keyframe. */
export function setHold(held) {
  if (!session || !session.joined || chorus.held === held) return;
  chorus.held = held;
  for (const lt of Object.values(chorus.localTracks)) lt.track.enabled = !held && !lt.muted;
  send({ type: held ? 'hold' : 'unhold' });
  render();
}

export async function setMuted(source, muted) {
  const lt = chorus.localTracks[source];
  if (!lt) return;
  lt.muted = muted;
  lt.track.enabled = !muted && !chorus.held;
  if (lt.trackId) send({ type: 'mute', track_id: lt.trackId, muted });
  const t = chorus.self && chorus.self.tracks && chorus.self.tracks.find((x) => x.track_id === lt.trackId);
  if (t) t.muted = muted;
  render();
}

/** The buttons and the own tile. */
export function renderControls() {
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
}
