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

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');
const { fail, until, runTest, demoPageServed, launchChromium, closeChromium, joinThroughForm } = require('./lib');

const BASE = (process.env.CHORUS_URL || 'https://127.0.0.1:7880').replace(/\/+$/, '');
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const SPKI = process.env.CHORUS_CERT_SPKI || '';
const t0 = Date.now();
const info = (...a) => console.log(`[https ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const snap = (page) => page.evaluate(() => window.chorus && window.chorus.snapshot());

let context = null;
let userDataDir = null;
const pages = []; // { name, page, sockets: [], participantId }

async function main() {
  if (!BASE.startsWith('https://')) fail(`CHORUS_URL ${BASE} is not https://`);
  if (!SPKI) fail('CHORUS_CERT_SPKI is not set');
  await demoPageServed(BASE);
  ({ context, userDataDir } = await launchChromium(chromium, { exe: EXE, prefix: 'chorus-https-profile-', extraArgs: [`--ignore-certificate-errors-spki-list=${SPKI}`] }));
  const room = `https-${Date.now().toString(36)}`;
  for (const name of ['Alice', 'Bob']) {
    const page = pages.length === 0 && context.pages()[0] ? context.pages()[0] : await context.newPage();
    const p = { name, page, sockets: [], participantId: null };
    page.on('websocket', (ws) => p.sockets.push(ws.url()));
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    const secure = await page.evaluate(() => window.isSecureContext && location.protocol);
    if (secure !== 'https:') fail(`${name}'s page is not a secure https: context (${secure})`);
    const s = await joinThroughForm(page, { room, name, snap: () => snap(page) });
    p.participantId = s.participantId;
    const wss = `wss://${new URL(BASE).host}/v1/rtc`;
    if (!p.sockets.some((u) => u.startsWith(wss))) fail(`${name} signaled over ${p.sockets.join(', ') || 'nothing'}, not ${wss}`);
    info(`${name} joined as ${p.participantId} over ${wss}`);
    pages.push(p);
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

async function cleanup() {
  await closeChromium(context, userDataDir);
}

runTest({ main, limitMs: 90_000, info, dumpArtifacts: async (err) => info(`FAIL: ${err.message}`), cleanup });
