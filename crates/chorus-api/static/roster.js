// Who is in the room and in which state (`participant_joined`, `participant_left`,
// `participant_state`, `roster` pages), who left and why, and the roster's view.

import { $, chorus } from './state.js';
import { log } from './notices.js';
import { trackOf } from './tracks.js';
import { clearUnreachable } from './unreachable.js';

/** The rest of a large roster, in pages right after `joined`. */
export function onRosterPage(m) {
  for (const p of m.participants || []) chorus.roster.set(p.participant_id, p);
}

export function onParticipantJoined(m) {
  if (m.participant.participant_id !== chorus.participantId) {
    chorus.roster.set(m.participant.participant_id, m.participant);
  }
}

export function onParticipantLeft(m) {
  const p = chorus.roster.get(m.participant_id);
  chorus.roster.delete(m.participant_id);
  const who = p ? p.name || p.identity : m.identity;
  log(`${who} left: ${m.reason}`);
  // Why people left, shown a while under the roster.
  chorus.departures.unshift({ who, reason: m.reason, at: Date.now() });
  chorus.departures.length = Math.min(chorus.departures.length, 5);
}

export function onParticipantState(m) {
  const p = m.participant_id === chorus.participantId ? chorus.self : chorus.roster.get(m.participant_id);
  if (p) p.state = m.state;
  if (p && m.reason) p.reason = m.reason;
  // The server hears us again: whatever it said was unreachable is not any more.
  if (m.participant_id === chorus.participantId && m.state === 'connected') clearUnreachable(null);
}

/** The roster (ourselves first, then by joining time) and the last departures. */
export function renderRoster() {
  const self = chorus.self;
  const roster = $('roster');
  roster.textContent = '';
  const people = [...chorus.roster.values()].sort((a, b) => (a.joined_at_ms || 0) - (b.joined_at_ms || 0));
  if (self) people.unshift(self);
  for (const p of people) {
    const li = document.createElement('li');
    li.dataset.participantId = p.participant_id;
    li.dataset.testid = 'roster-item';
    if (p === self) li.dataset.self = 'true';
    const name = document.createElement('span');
    name.textContent = `${p.name || p.identity}${p === self ? ' (you)' : ''}`;
    const st = document.createElement('span');
    st.className = 'state';
    const m = trackOf(p, 'microphone');
    const noMedia = p === self && Object.keys(chorus.mediaUnreachable).length > 0;
    st.textContent = `${p.state || ''}${noMedia ? ' · no media' : ''}${m && m.muted ? ' · muted' : ''}`;
    li.append(name, st);
    roster.appendChild(li);
  }
  $('roster-count').textContent = String(people.length);
  const gone = $('departures');
  gone.textContent = '';
  for (const d of chorus.departures) {
    const li = document.createElement('li');
    li.textContent = `${d.who} left: ${d.reason.replace(/_/g, ' ')}`;
    gone.appendChild(li);
  }
}
