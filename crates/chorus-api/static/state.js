// What the demo page knows, in one place: `chorus` (also `window.chorus`, for tests and
// debugging), the session of the current join, and render(), which redraws the page once
// per burst of changes (the drawing itself is set by demo.js).

export const $ = (id) => document.getElementById(id);

export const chorus = {
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
export let session = null;

export function setSession(s) {
  session = s;
}

let renderQueued = false;
let renderer = () => {};

/** What render() runs (demo.js: the whole page). */
export function setRenderer(fn) {
  renderer = fn;
}

/** Redraws the page at the end of this task, once however often it is called. */
export function render() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    renderer();
  });
}
