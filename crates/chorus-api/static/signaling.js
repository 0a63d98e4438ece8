// The signaling socket's two verbs: send a frame, and wait for a frame from the server
// (frames.js says what each one does).

import { session } from './state.js';
import { log, redact } from './notices.js';

/** How long the server may take to answer a request (an offer, a publish). */
export const REPLY_TIMEOUT_MS = 10000;

export function send(msg) {
  const s = session;
  if (!s || !s.ws || s.ws.readyState !== WebSocket.OPEN) return false;
  s.ws.send(JSON.stringify(msg));
  if (msg.type !== 'ping' && msg.type !== 'candidate') log('→', redact(msg));
  return true;
}

/** Resolves with the first server frame matching `pred`; rejects after `ms` or when the session ends. */
export function waitFor(s, pred, ms, what) {
  return new Promise((resolve, reject) => {
    const w = {
      pred,
      resolve: (m) => { clearTimeout(w.timer); resolve(m); },
      reject: (e) => { clearTimeout(w.timer); reject(e); },
    };
    w.timer = setTimeout(() => {
      s.waiters.delete(w);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    s.waiters.add(w);
  });
}
