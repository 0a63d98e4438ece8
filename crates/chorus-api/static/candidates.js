// ICE candidates both ways (trickle ICE): remote ones wait until their connection has
// the remote description, local ones until the SDP they belong to went out.

import { session } from './state.js';
import { log } from './notices.js';
import { send } from './signaling.js';

function candidateInit(c) {
  const init = { candidate: c.candidate || '' };
  if (c.sdpMid !== undefined && c.sdpMid !== null) init.sdpMid = c.sdpMid;
  if (c.sdpMLineIndex !== undefined && c.sdpMLineIndex !== null) init.sdpMLineIndex = c.sdpMLineIndex;
  if (init.sdpMid === undefined && init.sdpMLineIndex === undefined) init.sdpMLineIndex = 0;
  if (c.usernameFragment) init.usernameFragment = c.usernameFragment;
  return init;
}

async function addRemoteCandidate(pc, cand) {
  try {
    if (cand) await pc.addIceCandidate(candidateInit(cand));
    else await pc.addIceCandidate(); // end of candidates
  } catch (e) {
    if (cand) log('addIceCandidate failed', e.message, cand.candidate);
  }
}

export function onRemoteCandidate(s, target, cand) {
  const pc = target === 'publisher' ? s.pubPc : target === 'subscriber' ? s.subPc : null;
  if (!pc) return;
  // Until the remote description is set the candidate cannot be applied: queue it.
  if (!pc.remoteDescription || s.applying[target]) s.remoteCandidates[target].push(cand);
  else addRemoteCandidate(pc, cand);
}

export async function flushRemoteCandidates(s, target) {
  const pc = target === 'publisher' ? s.pubPc : s.subPc;
  const queued = s.remoteCandidates[target].splice(0);
  for (const c of queued) await addRemoteCandidate(pc, c);
}

export function onLocalCandidate(s, target, cand) {
  if (s !== session) return;
  const json = cand ? cand.toJSON() : null;
  if (json && !json.candidate) return; // Chrome's empty end-of-generation marker
  // Candidates may only follow the SDP they belong to.
  if (!s.localSent[target]) s.localCandidates[target].push(json);
  else send({ type: 'candidate', target, candidate: json });
}

export function flushLocalCandidates(s, target) {
  s.localSent[target] = true;
  for (const c of s.localCandidates[target].splice(0)) send({ type: 'candidate', target, candidate: c });
}
