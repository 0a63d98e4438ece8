// Chorus demo client: plain WebRTC + WebSocket, no libraries, in ES modules of one job
// each. Protocol (docs/signaling.md): one WebSocket to /v1/rtc?access_token=JWT and two
// RTCPeerConnections per participant, publisher (this page offers) and subscriber (the
// server offers).
//
// This file draws the page and wires its buttons. The rest, roughly in call order:
//   state.js         what the page knows (`chorus`, also `window.chorus`), the current
//                    session, render()
//   notices.js       the log, errors, the status line, texts for the server's codes
//   session.js       join and leave: token, camera and microphone, socket, publishing
//   signaling.js     send a frame, wait for one
//   frames.js        what each frame from the server does
//   connection.js    the two peer connections and ICE restarts
//   negotiation.js   SDP on both connections, remote tracks from the server's offers
//   candidates.js    trickle ICE both ways
//   unreachable.js   `media_unreachable` and its notice
//   publish.js       publishing tracks, simulcast, codec choice, dynacast
//   screen.js        screen share
//   controls.js      mute, camera off, hold, and the own tile and buttons
//   tracks.js        the tracks each participant publishes
//   roster.js        who is in the room, their states, who left
//   lobby.js         waiting in a lobby, admitting and rejecting
//   tiles.js         the remote tiles and the room audio
//   subscription.js  what we ask to receive: tile sizes (`track_settings`), last-N, pins
//   chat.js          the chat on the `_reliable` data channel
//   stats.js         getStats() summaries and a snapshot for tests
//   devices.js       microphone, camera and speaker choice (loaded after this file)

import { $, chorus, session, setRenderer } from './state.js';
import { showError } from './notices.js';
import { send } from './signaling.js';
import { join, leave } from './session.js';
import { parseSections } from './negotiation.js';
import { videoConstraints } from './publish.js';
import { toggleScreen } from './screen.js';
import { renderControls, setHold, setMuted } from './controls.js';
import { renderRoster } from './roster.js';
import { renderLobby } from './lobby.js';
import { renderTiles } from './tiles.js';
import { renderUnreachable } from './unreachable.js';
import { setLastN, setPins } from './subscription.js';
import { renderChat, sendChat } from './chat.js';
import { inboundStats, snapshot, transportStats } from './stats.js';

// What tests and devices.js call on `window.chorus`.
Object.assign(chorus, {
  join, leave, setMuted, setHold, toggleScreen, setLastN, setPins, sendChat,
  inboundStats, transportStats, snapshot, parseSections, videoConstraints,
});

function renderNow() {
  const inCall = !!session && chorus.state !== 'joining' && !chorus.lobby;
  $('call').classList.toggle('shown', inCall || chorus.state === 'leaving');
  $('join-form').style.display = session ? 'none' : '';
  document.body.dataset.state = chorus.state;
  renderControls();
  renderChat();
  renderRoster();
  renderLobby();
  renderUnreachable();
  renderTiles();
}
setRenderer(renderNow);

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
renderNow();
