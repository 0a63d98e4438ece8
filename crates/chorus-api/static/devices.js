// Chorus demo: microphone, camera and speaker choice, on top of demo.js (`chorus`, state.js).
//
// The three <select>s list `enumerateDevices()` and are filled again on `devicechange`
// (and after joining, when the browser has permission and gives labels). A choice made in a
// call takes effect at once without renegotiation: a new microphone or camera track from
// getUserMedia replaces the old one on the existing sender (`RTCRtpSender.replaceTrack`;
// the sender's simulcast encodings stay as they are), and the old track is stopped. The
// speaker is every <audio> element's `setSinkId`, where the browser has it. Choices are
// remembered for the next join (demo.js asks `chorus.devices.constrain`).
import { chorus } from './state.js';

(() => {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const $ = (id) => document.getElementById(id);

  const SELECTS = { audioinput: 'mic-select', videoinput: 'camera-select', audiooutput: 'speaker-select' };
  const SOURCE = { audioinput: 'microphone', videoinput: 'camera' };
  const sinkSupported = typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

  /** kind -> deviceId chosen ('' = the browser's default). */
  const chosen = { audioinput: '', videoinput: '', audiooutput: '' };
  /** Device switches done (for tests): { kind, deviceId, oldTrackId, newTrackId }. */
  const switches = [];

  const note = (text) => {
    const el = $('device-note');
    if (el) el.textContent = text;
  };

  /** getUserMedia constraints for `kind` with the chosen device, if any. */
  function constrain(kind, base) {
    const id = chosen[kind];
    if (!id) return base;
    return { ...(typeof base === 'object' ? base : {}), deviceId: { exact: id } };
  }

  async function refresh() {
    let list;
    try {
      list = await navigator.mediaDevices.enumerateDevices();
    } catch (e) {
      note(`cannot list devices: ${e.message}`);
      return;
    }
    for (const [kind, id] of Object.entries(SELECTS)) {
      const select = $(id);
      if (!select) continue;
      // Without permission the browser hides ids (empty `deviceId`): nothing to choose yet.
      const devices = list.filter((d) => d.kind === kind && d.deviceId);
      select.replaceChildren(...devices.map((d, i) => new Option(d.label || `${kind} ${i + 1}`, d.deviceId)));
      const current = chosen[kind] || currentDevice(kind);
      if (devices.some((d) => d.deviceId === current)) select.value = current;
      select.disabled = devices.length === 0 || (kind === 'audiooutput' && !sinkSupported);
    }
    if (!sinkSupported) note('this browser cannot choose the speaker (no setSinkId)');
  }

  /** The device the track we send now comes from. */
  function currentDevice(kind) {
    const lt = SOURCE[kind] && chorus.localTracks[SOURCE[kind]];
    const settings = lt && lt.track.getSettings ? lt.track.getSettings() : {};
    return settings.deviceId || '';
  }

  /**
   * Sends from device `deviceId` instead: a new track on the same sender. Out of a call,
   * or joined without that kind of track, the choice only applies to the next join.
   */
  async function switchInput(kind, deviceId) {
    chosen[kind] = deviceId;
    const lt = chorus.localTracks[SOURCE[kind]];
    const pc = chorus.pubPc;
    const sender = lt && pc && pc.getSenders().find((x) => x.track === lt.track);
    if (!sender) {
      if (chorus.state === 'joined') note('not sending that kind of media: the choice applies from the next join');
      return null;
    }
    const base = kind === 'videoinput' ? chorus.videoConstraints() : true;
    const constraints = { [kind === 'videoinput' ? 'video' : 'audio']: constrain(kind, base) };
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    } catch (e) {
      // Some devices (phones) open one camera at a time: let go of the old one and retry.
      if (e.name !== 'NotReadableError' && e.name !== 'AbortError') throw e;
      lt.track.stop();
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    }
    const track = stream.getTracks()[0];
    // Still the same track in the same call? (a leave, a mute or another switch meanwhile)
    if (chorus.localTracks[SOURCE[kind]] !== lt || chorus.pubPc !== pc) {
      track.stop();
      return null;
    }
    track.enabled = lt.track.enabled;
    await sender.replaceTrack(track);
    const old = lt.track;
    lt.track = track;
    if (chorus.localStream) {
      chorus.localStream.removeTrack(old);
      chorus.localStream.addTrack(track);
      if (kind === 'videoinput') $('local-video').srcObject = chorus.localStream;
    }
    old.stop();
    const done = { kind, deviceId, oldTrackId: old.id, newTrackId: track.id };
    switches.push(done);
    return done;
  }

  function applySink(el) {
    if (!sinkSupported || !chosen.audiooutput || el.sinkId === chosen.audiooutput) return;
    el.setSinkId(chosen.audiooutput).catch((e) => note(`cannot play on that speaker: ${e.message}`));
  }

  function setSpeaker(deviceId) {
    chosen.audiooutput = deviceId;
    for (const el of document.querySelectorAll('audio')) applySink(el);
  }

  for (const [kind, id] of Object.entries(SELECTS)) {
    const select = $(id);
    if (!select) continue;
    select.addEventListener('change', () => {
      note('');
      if (kind === 'audiooutput') setSpeaker(select.value);
      else switchInput(kind, select.value).catch((e) => note(`cannot switch to that device: ${e.name}: ${e.message}`));
    });
  }
  // Audio elements come and go with remote tracks; each new one plays on the chosen speaker.
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) {
        if (n.nodeType !== 1) continue;
        if (n.tagName === 'AUDIO') applySink(n);
        for (const el of n.querySelectorAll('audio')) applySink(el);
      }
    }
  }).observe(document.body, { childList: true, subtree: true });
  navigator.mediaDevices.addEventListener('devicechange', refresh);
  // Labels and ids appear once the page has camera/microphone permission, i.e. after joining.
  new MutationObserver(() => { if ($('call').classList.contains('shown')) refresh(); })
    .observe($('call'), { attributes: true, attributeFilter: ['class'] });
  refresh();

  chorus.devices = { constrain, refresh, switchInput, setSpeaker, switches, sinkSupported };
})();
