// Publishing: each local track is announced (`publish`, answered by `publish_accepted`),
// then added to the publisher connection, the camera in three simulcast layers (unless
// the page's address says `?simulcast=0`), in the codec asked for. Dynacast
// (`publisher_layers`) turns layers on and off (of a VP9 SVC camera: fewer spatial layers
// through its scalabilityMode).

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
  if (source === 'camera' && svcWanted()) init.sendEncodings = [{ scalabilityMode: SVC_MODE }];
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

// What a VP9 SVC camera (`?codec=vp9&svc=1`) sends while every layer is needed.
const SVC_MODE = 'L3T3_KEY';
const SVC_LAYERS = 3;

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
 * or off as the server says nobody (or somebody) receives them; of our VP9 SVC camera
 * (one encoding, layers `s0`, `s1`, `s2`) it applies the hint through scalabilityMode.
 */
export function applyPublisherLayers(m) {
  const lt = Object.values(chorus.localTracks).find((t) => t.trackId === m.track_id);
  const sender = lt && chorus.pubPc && chorus.pubPc.getSenders().find((x) => x.track === lt.track);
  if (!sender) return;
  const layers = m.layers || [];
  if (svcWanted() && layers.length && layers.every((l) => /^s\d$/.test(l.rid))) {
    applySvcHint(sender, layers);
    return;
  }
  const params = sender.getParameters();
  let changed = false;
  for (const enc of params.encodings || []) {
    const layer = layers.find((l) => l.rid === enc.rid);
    if (layer && enc.active !== layer.active) {
      enc.active = layer.active;
      changed = true;
    }
  }
  if (changed) sender.setParameters(params).catch((e) => log('setParameters failed', e.message));
}

/**
 * The SVC hint: send only the lowest k spatial layers (k = up to the highest the server
 * says is active), all when all it names are. Fewer layers means fewer in the mode *and*
 * the input scaled down: L1T3 alone would send its one layer at the full 1280x720, which
 * is the top layer's size, not the lowest's. Layer i of the camera's L3T3_KEY is the
 * capture size / 2^(2-i), so its lowest k are the capture size / 2^(3-k) in k layers;
 * the server may name fewer than three (those the stream carried so far: the encoder
 * drops the top ones while its bandwidth estimate climbs), the sizes stay the same.
 */
export function svcSettings(layers) {
  const named = Math.min(layers.length, SVC_LAYERS);
  let k = 0;
  layers.slice(0, named).forEach((l, i) => { if (l.active) k = i + 1; });
  k = Math.max(k, 1); // the server never turns the lowest off; never send nothing
  if (k >= named) return { scalabilityMode: SVC_MODE, scaleResolutionDownBy: 1 };
  return { scalabilityMode: k === 1 ? 'L1T3' : `L${k}T3_KEY`, scaleResolutionDownBy: 2 ** (SVC_LAYERS - k) };
}

// One setParameters at a time per sender (another before the first settles is refused
// as a stale transaction), the latest hint wins; a refusal is logged once per page.
const svcHints = new WeakMap();
let svcRefusalLogged = false;

function applySvcHint(sender, layers) {
  const want = svcSettings(layers);
  const st = svcHints.get(sender) || { want: null, busy: false };
  svcHints.set(sender, st);
  st.want = want;
  if (st.busy) return;
  st.busy = true;
  (async () => {
    while (st.want) {
      const w = st.want;
      st.want = null;
      try {
        const params = sender.getParameters();
        const enc = (params.encodings || [])[0];
        if (!enc || (enc.scalabilityMode === w.scalabilityMode && (enc.scaleResolutionDownBy || 1) === w.scaleResolutionDownBy)) continue;
        enc.scalabilityMode = w.scalabilityMode;
        enc.scaleResolutionDownBy = w.scaleResolutionDownBy;
        await sender.setParameters(params);
        log(`dynacast: the camera now goes out in ${w.scalabilityMode} at 1/${w.scaleResolutionDownBy} of its size`);
      } catch (e) {
        // A browser that cannot change the mode keeps sending every layer: the server
        // forwards each subscriber what it needs all the same.
        if (!svcRefusalLogged) log(`dynacast: the browser refused scalabilityMode ${w.scalabilityMode} (${e.name}: ${e.message}); the camera keeps its layers`);
        svcRefusalLogged = true;
      }
    }
    st.busy = false;
  })();
}

// 720p where the camera has it: browsers send three simulcast layers only from
// about 960x540 up (fewer below), and the top layer is what a large tile shows.
export function videoConstraints() {
  return simulcastWanted() || svcWanted()
    ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }
    : { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };
}
