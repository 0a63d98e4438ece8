// Screen share: the `screen_share` source (and `screen_share_audio`), outside last-N.

import { chorus, render, session } from './state.js';
import { log, showError } from './notices.js';
import { send } from './signaling.js';
import { removeTrack } from './tracks.js';
import { publishTrack } from './publish.js';
import { negotiatePublisher } from './negotiation.js';

/**
 * Shares a screen (getDisplayMedia) as the `screen_share` source, with its sound as
 * `screen_share_audio` where the browser gives one (a tab's audio), or stops sharing.
 */
export async function toggleScreen() {
  const s = session;
  if (!s || !s.joined) return;
  if (chorus.screen) {
    stopScreen(s);
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
  } catch (e) {
    log(`screen share not started: ${e.name}: ${e.message}`);
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track || s !== session) {
    stream.getTracks().forEach((t) => t.stop());
    return;
  }
  chorus.screen = { track, stream };
  // The browser's own "Stop sharing" button ends the track.
  track.onended = () => { if (chorus.screen && chorus.screen.track === track) stopScreen(s); };
  try {
    await publishTrack(s, track, 'screen_share', stream);
    const sound = stream.getAudioTracks()[0];
    if (sound) await publishTrack(s, sound, 'screen_share_audio', stream);
    await negotiatePublisher(s);
  } catch (e) {
    showError(`Could not share the screen: ${e.message}`, 'publish_failed');
    stopScreen(s);
  }
  render();
}

function stopScreen(s) {
  const sc = chorus.screen;
  chorus.screen = null;
  if (!sc) return;
  sc.stream.getTracks().forEach((t) => t.stop());
  let removed = false;
  for (const source of ['screen_share', 'screen_share_audio']) {
    const lt = chorus.localTracks[source];
    delete chorus.localTracks[source];
    if (!lt) continue;
    if (lt.trackId) {
      send({ type: 'unpublish', track_id: lt.trackId });
      removeTrack(chorus.participantId, lt.trackId);
    }
    const sender = s.pubPc && s.pubPc.getSenders().find((x) => x.track === lt.track);
    if (sender && s === session && !s.leaving) {
      s.pubPc.removeTrack(sender);
      removed = true;
    }
  }
  if (removed) negotiatePublisher(s).catch(() => {});
  render();
}
