// Publishing: each local track is announced (`publish`, answered by `publish_accepted`),
// then added to the publisher connection, the camera in three simulcast layers (unless
// the page's address says `?simulcast=0`), in the codec asked for. Dynacast
// (`publisher_layers`) turns layers on and off.

import { chorus } from './state.js';
import { describeError, log } from './notices.js';
import { REPLY_TIMEOUT_MS, send, waitFor } from './signaling.js';
import { upsertTrack } from './tracks.js';

export async function publishTrack(s, track, source, stream) {
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
  if (source === 'camera' && svcWanted()) init.sendEncodings = [{ scalabilityMode: 'L3T3_KEY' }];
  else if (source === 'camera' && simulcastWanted()) init.sendEncodings = SIMULCAST_ENCODINGS;
  try {
    s.pubPc.addTransceiver(track, init);
  } catch (e) {
    // A browser that cannot send these layers sends the camera as one stream.
    if (!init.sendEncodings) throw e;
    log(`no simulcast here (${e.name}: ${e.message}): the camera goes out as one stream`);
    delete init.sendEncodings;
    s.pubPc.addTransceiver(track, init);
  }
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

// The camera goes out in three simulcast layers, VP8 or H.264 alike (each subscriber
// gets the one its tile needs); `?simulcast=0` in the page's address sends one stream.
function simulcastWanted() {
  const asked = new URLSearchParams(location.search).get('simulcast');
  return !(asked === '0' || asked === 'off' || asked === 'false');
}

// The video codec to send: VP8, or H.264 with `?codec=h264` (VP9 with `?codec=vp9`, AV1
// with `?codec=av1`) in the page's address.
function videoCodec() {
  const asked = (new URLSearchParams(location.search).get('codec') || '').toLowerCase();
  return { h264: 'video/H264', vp9: 'video/VP9', av1: 'video/AV1' }[asked] || 'video/VP8';
}

// `?codec=vp9&svc=1` (or `?codec=av1&svc=1`): the camera goes out as one stream in three
// spatial and three temporal layers (scalabilityMode L3T3_KEY) instead of simulcast
// (docs/signaling.md, "VP9 SVC" and "AV1").
function svcWanted() {
  const layered = videoCodec() === 'video/VP9' || videoCodec() === 'video/AV1';
  return layered && new URLSearchParams(location.search).get('svc') === '1';
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
export function applyPublisherLayers(m) {
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

// 720p where the camera has it: browsers send three simulcast layers only from
// about 960x540 up (fewer below), and the top layer is what a large tile shows.
export function videoConstraints() {
  return simulcastWanted() || svcWanted()
    ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }
    : { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };
}
