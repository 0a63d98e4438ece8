// The lobby (docs/signaling.md, "The lobby"): waiting in it until someone admits us
// (`lobby`), or, with the admit grant, admitting or rejecting those who wait.

import { $, chorus, session } from './state.js';
import { setStatus } from './notices.js';
import { send } from './signaling.js';

/** We wait in the lobby; `joined` comes once someone admits us. */
export function onLobby(m) {
  chorus.lobby = { room: m.room, count: m.num_participants };
  chorus.participantId = m.participant_id;
  setStatus(`waiting in the lobby of “${m.room}” (${m.num_participants} in the room)`);
}

export function renderLobby() {
  // The lobby: waiting in it, or admitting those who wait.
  const waitingHere = !!session && !!chorus.lobby && !session.joined;
  $('lobby-panel').hidden = !waitingHere;
  if (waitingHere) {
    $('lobby-text').textContent = `Waiting in the lobby of “${chorus.lobby.room}”: ${chorus.lobby.count} in the room. Someone in the room lets you in.`;
  }
  const admit = $('lobby-admit');
  admit.hidden = chorus.waiting.size === 0;
  const list = $('lobby-list');
  list.textContent = '';
  for (const w of chorus.waiting.values()) {
    const li = document.createElement('li');
    li.dataset.testid = 'lobby-item';
    li.dataset.participantId = w.participant_id;
    const name = document.createElement('span');
    name.textContent = w.name || w.identity;
    const yes = document.createElement('button');
    yes.type = 'button';
    yes.textContent = 'Admit';
    yes.dataset.testid = 'admit-button';
    yes.onclick = () => send({ type: 'admit', participant_id: w.participant_id });
    const no = document.createElement('button');
    no.type = 'button';
    no.textContent = 'Reject';
    no.dataset.testid = 'reject-button';
    no.onclick = () => send({ type: 'reject', participant_id: w.participant_id });
    li.append(name, ' ', yes, ' ', no);
    list.appendChild(li);
  }
}
