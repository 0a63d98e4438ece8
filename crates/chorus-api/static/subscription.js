// What the page asks the server to send it: for each remote video, the size its tile
// shows it at and whether it is on screen (`track_settings`, which picks the simulcast
// layer), and last-N and pins (docs/signaling.md, "Video").

import { send } from './signaling.js';

/** track_id -> the last `track_settings` sent, as JSON (nothing is sent twice). */
const tileSettings = new Map();
const tileTimers = new Map();
const tileResize = typeof ResizeObserver === 'function' ? new ResizeObserver((es) => es.forEach((e) => tileChanged(e.target))) : null;
const tileVisible = typeof IntersectionObserver === 'function' ? new IntersectionObserver((es) => es.forEach((e) => tileChanged(e.target, e.isIntersecting))) : null;

/**
 * Tells the server the size a remote video is shown at and whether it is on screen, so
 * that it sends the simulcast layer that fits (`track_settings`, docs/signaling.md).
 */
export function watchTile(el) {
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

/** Last-N (docs/signaling.md): how many cameras to receive, and whose first. */
export const setLastN = (n) => send({ type: 'set_last_n', last_n: n });
export const setPins = (participantIds) => send({ type: 'set_pins', participant_ids: participantIds });
