// What the page tells its user: the signaling log, errors, the status line, and the
// words for the server's codes (errors, leave reasons, WebSocket close codes).

import { $, chorus } from './state.js';

export const CLOSE_CODES = {
  1000: 'closed normally',
  1001: 'server going away',
  1006: 'connection lost',
  1009: 'message too big',
  4401: 'access token refused',
  4403: 'join refused',
  4500: 'the room failed',
};

export const LEAVE_REASONS = {
  client_left: 'you left the room',
  signaling_closed: 'the signaling connection closed',
  connection_lost: 'the media connection was lost',
  media_timeout: 'the media connection never came up (a firewall may block UDP)',
  removed_by_server: 'you were removed from the room',
  duplicate_identity: 'you joined the room again from somewhere else',
  room_deleted: 'the room was deleted',
  room_failed: 'the room failed',
  server_shutdown: 'the server is shutting down',
  lobby_rejected: 'you were not let in from the lobby',
};

export const ERROR_TEXT = {
  token_missing: 'No access token was sent.',
  token_malformed: 'The access token is malformed.',
  token_unknown_key: 'The access token was signed with an unknown API key.',
  token_invalid_signature: 'The access token signature is invalid.',
  token_expired: 'The access token has expired.',
  token_not_yet_valid: 'The access token is not valid yet.',
  token_wrong_room: 'The access token is for another room.',
  room_full: 'The room is full.',
  room_not_found: 'The room does not exist.',
  room_closed: 'The room was closed.',
  invalid_room_name: 'Invalid room name.',
  too_many_rooms: 'The server has too many rooms.',
  server_draining: 'The server is restarting and takes no one new; join again in a moment.',
};

export function log(...parts) {
  const line = parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
  const el = $('log-lines');
  if (el) {
    const div = document.createElement('div');
    div.textContent = `${(performance.now() / 1000).toFixed(2)} ${line}`;
    el.appendChild(div);
    while (el.childNodes.length > 500) el.removeChild(el.firstChild);
  }
  console.log('[chorus]', line);
}

export function redact(msg) {
  if (msg && typeof msg.sdp === 'string') return { ...msg, sdp: `<${msg.sdp.length} bytes>` };
  return msg;
}

export function showError(text, code) {
  chorus.errors.push({ code: code || null, message: text, at: performance.now() });
  const el = $('error');
  el.textContent = text;
  el.classList.add('shown');
  log('ERROR', text);
}

export function clearError() {
  const el = $('error');
  el.textContent = '';
  el.classList.remove('shown');
}

export function setStatus(text) {
  $('status').textContent = text;
}

export function describeError(code, message) {
  const known = ERROR_TEXT[code];
  return `${known || message || code}${known && message ? ` (${message})` : ''} [${code}]`;
}

export function closeText(code, reason) {
  if (code == null) return 'the signaling connection closed';
  const what = CLOSE_CODES[code] || 'closed';
  return `signaling closed: ${what} (code ${code}${reason ? `, ${reason}` : ''})`;
}
