// Helpers shared by the tests of a video in layers (simulcast.js, svc.js: VP9 SVC, av1.js: AV1 SVC):
// what Alice's camera goes out as, the layers the server lists for it, showing it on Bob's
// page at a given size and waiting until what Bob receives fits that size.
'use strict';

const { sleep, fail, until, BASE } = require('./lib');

// The server's development credentials (scripts/run.sh and the test server use them).
const API_AUTH = `Basic ${Buffer.from('devkey:devsecret-change-me-0123456789abcdef').toString('base64')}`;
const SMALL = { width: 160, height: 90 };
const LARGE = { width: 1280, height: 720 };

/** What `viewer` receives of `owner`'s camera: { framesDecoded, frameWidth, codec, ... }. */
const received = async (viewer, owner) =>
  ((await viewer.page.evaluate(() => window.chorus.inboundStats())).byParticipant[owner.participantId] || {}).video || {};

/**
 * What `p`'s camera goes out as: { codec, scalabilityMode, frameWidth } from outbound-rtp,
 * and what its sender is set to: { mode, scale } from getParameters(); or null.
 */
const sending = (p) =>
  p.page.evaluate(async () => {
    const cam = window.chorus.localTracks.camera;
    const sender = cam && window.chorus.pubPc.getSenders().find((s) => s.track === cam.track);
    if (!sender) return null;
    const enc = sender.getParameters().encodings[0] || {};
    const set = { mode: enc.scalabilityMode, scale: enc.scaleResolutionDownBy };
    const report = await sender.getStats();
    for (const st of report.values()) {
      if (st.type !== 'outbound-rtp') continue;
      const codec = st.codecId && report.get(st.codecId);
      return { codec: codec && codec.mimeType, scalabilityMode: st.scalabilityMode, frameWidth: st.frameWidth, ...set };
    }
    return null;
  });

/** The layers the control API lists for `trackId` in `room` (`tracks[].layers`), or null. */
async function serverLayers(room, trackId) {
  const res = await fetch(`${BASE}/v1/rooms/${encodeURIComponent(room)}/participants`, { headers: { authorization: API_AUTH } });
  if (!res.ok) throw new Error(`GET /v1/rooms/${room}/participants: HTTP ${res.status}`);
  for (const p of (await res.json()).participants || []) {
    const track = (p.tracks || []).find((x) => x.track_id === trackId);
    if (track) return track.layers || [];
  }
  return null;
}

/**
 * Shows `trackId` on `viewer`'s page at `size` (CSS pixels; the page runs at DPR 1): the
 * page's ResizeObserver sends `track_settings` with the new size.
 */
async function showAt(viewer, trackId, size) {
  const ok = await viewer.page.evaluate(({ trackId, size }) => {
    const el = document.querySelector(`video[data-track-id="${trackId}"]`);
    if (!el) return false;
    el.style.cssText = `position:fixed;left:0;top:0;z-index:10;width:${size.width}px;height:${size.height}px`;
    return true;
  }, { trackId, size });
  if (!ok) fail(`${viewer.name}'s page has no <video> for the camera ${trackId}`);
}

/**
 * Waits until the width `viewer` receives of `owner` satisfies `ok`, then requires 1.5 s
 * more of decoding (at least 5 frames) still at such a width.
 */
async function waitWidth(viewer, owner, what, ms, ok) {
  let last = {};
  const v = await until(() => `${what} (${viewer.name} receives ${last.frameWidth}x${last.frameHeight})`, ms, async () => {
    last = await received(viewer, owner);
    return last.frameWidth && ok(last.frameWidth) ? last : null;
  }, 250);
  const before = v.framesDecoded || 0;
  await sleep(1500);
  const after = await received(viewer, owner);
  const decoded = (after.framesDecoded || 0) - before;
  if (decoded < 5) fail(`${viewer.name} decoded only ${decoded} frames in 1.5 s after ${what}`);
  if (!ok(after.frameWidth)) fail(`${what}, then ${viewer.name} received ${after.frameWidth}x${after.frameHeight} again`);
  return after;
}

/** Waits until `p`'s camera sender is set to `mode` and its encoder sends what `ok` accepts. */
async function waitSending(p, mode, what, ms, ok) {
  let out = null;
  return until(() => `${what} (${p.name}'s sender: ${JSON.stringify(out)})`, ms, async () => {
    out = await sending(p);
    return out && out.mode === mode && out.scalabilityMode === mode && ok(out.frameWidth) ? out : null;
  }, 250);
}

module.exports = { API_AUTH, SMALL, LARGE, received, sending, serverLayers, showAt, waitSending, waitWidth };
