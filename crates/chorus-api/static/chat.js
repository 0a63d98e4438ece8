// The chat: JSON on the publisher connection's `_reliable` data channel (`_lossy` is
// opened too, unused here): {data, topic, to?} out, {from, topic, data} in, the sender
// stamped by the server (docs/signaling.md, "Data messages").

import { $, chorus, render, session } from './state.js';
import { log } from './notices.js';

export function onChatMessage(text) {
  let m;
  try { m = JSON.parse(text); } catch (e) { log('unreadable data message'); return; }
  if (!m || !m.from || m.topic !== 'chat' || !m.data || typeof m.data.text !== 'string') return;
  chorus.chat.push({
    from: m.from.identity, participantId: m.from.participant_id, text: m.data.text,
    private: !!m.private, self: false, at: Math.round(performance.now()),
  });
  render();
}

/** Sends a chat line to the room (or to `toIdentities`); false if the chat is not open. */
export function sendChat(text, toIdentities) {
  const s = session;
  if (!s || !s.chat || s.chat.readyState !== 'open' || !text) return false;
  const msg = { topic: 'chat', data: { text } };
  if (toIdentities && toIdentities.length) msg.to = toIdentities;
  s.chat.send(JSON.stringify(msg));
  chorus.chat.push({
    from: chorus.identity, participantId: chorus.participantId, text,
    private: !!msg.to, self: true, at: Math.round(performance.now()),
  });
  render();
  return true;
}

export function renderChat() {
  $('chat-send').disabled = !chorus.chatOpen;
  const list = $('chat-log');
  if (list.children.length > chorus.chat.length) list.textContent = ''; // a new session
  // Lines are only ever added: append what is new.
  for (const line of chorus.chat.slice(list.children.length)) {
    const li = document.createElement('li');
    if (line.private) li.classList.add('private');
    const who = document.createElement('b');
    const p = chorus.roster.get(line.participantId);
    who.textContent = line.self ? 'you' : (p && p.name) || line.from;
    li.append(who, `: ${line.text}`);
    list.append(li);
    list.scrollTop = list.scrollHeight;
  }
}
