#!/usr/bin/env node
// The demo page over the server's built-in HTTPS: two headless Chromium pages load
// https://127.0.0.1:PORT/ (a secure context), join one room through the form, open the
// signaling socket over wss:// and decode each other's video.
//
//   CHORUS_URL      server base URL, https://127.0.0.1:PORT
//   CHORUS_CERT_SPKI base64 SHA-256 of the server certificate's public key: Chromium trusts
//                   exactly that certificate (--ignore-certificate-errors-spki-list); Node
//                   trusts it through NODE_EXTRA_CA_CERTS
//   CHROMIUM        browser binary (default /usr/bin/chromium)
//
// scripts/browser-test.sh https makes the certificate, starts the server with it and runs
// this inside a private network namespace.
'use strict';

const { fail, until, BASE, joinThroughForm, demoTest } = require('./lib');

const SPKI = process.env.CHORUS_CERT_SPKI || '';
const t = demoTest('https');
const { info, pages } = t;

async function main() {
  if (!BASE.startsWith('https://')) fail(`CHORUS_URL ${BASE} is not https://`);
  if (!SPKI) fail('CHORUS_CERT_SPKI is not set');
  await t.launch({ extraArgs: [`--ignore-certificate-errors-spki-list=${SPKI}`] });
  const room = `https-${Date.now().toString(36)}`;
  for (const name of ['Alice', 'Bob']) {
    const p = await t.open(name);
    const secure = await p.page.evaluate(() => window.isSecureContext && location.protocol);
    if (secure !== 'https:') fail(`${name}'s page is not a secure https: context (${secure})`);
    await joinThroughForm(p, room);
    const wss = `wss://${new URL(BASE).host}/v1/rtc`;
    if (!p.sockets.some((u) => u.startsWith(wss))) fail(`${name} signaled over ${p.sockets.join(', ') || 'nothing'}, not ${wss}`);
    info(`${name} joined as ${p.participantId} over ${wss}`);
  }
  for (const p of pages) {
    const other = pages.find((o) => o !== p);
    await until(() => `${p.name} decodes video from ${other.name}`, 30_000, async () => {
      const st = await p.page.evaluate(() => window.chorus.inboundStats());
      return ((st.byParticipant[other.participantId] || {}).video || {}).framesDecoded > 0;
    }, 500);
  }
  info('both decode each other over https and wss');
}

t.run({ main, limitMs: 90_000 });
