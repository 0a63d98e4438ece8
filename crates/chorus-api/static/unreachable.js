// `media_unreachable`: the server hears nothing on one of our connections although
// signaling is alive. The page says so until the connection is connected again.

import { $, chorus, render, session } from './state.js';

export function onMediaUnreachable(m) {
  chorus.mediaUnreachable[m.target] = { after_ms: m.after_ms, hint: m.hint || '', at: performance.now() };
  render();
}

/** Clears the notice for `target`, or for every connection when `target` is null. */
export function clearUnreachable(target) {
  const had = Object.keys(chorus.mediaUnreachable).length;
  if (target) delete chorus.mediaUnreachable[target];
  else chorus.mediaUnreachable = {};
  if (had !== Object.keys(chorus.mediaUnreachable).length) render();
}


const TARGET_TEXT = {
  publisher: 'sending (publisher)',
  subscriber: 'receiving (subscriber)',
};

/** The media-unreachable notice: one line per connection the server says carries nothing. */
export function renderUnreachable() {
  const box = $('media-notice');
  if (!box) return;
  const entries = session ? Object.entries(chorus.mediaUnreachable) : [];
  box.classList.toggle('shown', entries.length > 0);
  box.dataset.targets = entries.map(([t]) => t).join(' ');
  const have = new Map();
  for (const el of box.querySelectorAll('[data-target]')) have.set(el.dataset.target, el);
  for (const [target, u] of entries) {
    let el = have.get(target);
    have.delete(target);
    if (!el) {
      el = document.createElement('div');
      el.dataset.target = target;
      box.appendChild(el);
    }
    const secs = Math.round((u.after_ms || 0) / 100) / 10;
    let hint = (u.hint || '').trim();
    if (hint) hint = ` ${hint[0].toUpperCase()}${hint.slice(1)}${/[.!?]$/.test(hint) ? '' : '.'}`;
    const text = `Media cannot reach the server: nothing on the ${TARGET_TEXT[target] || target} connection ` +
      `for ${secs} s.${hint} You are still in the room.`;
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of have.values()) el.remove();
}
