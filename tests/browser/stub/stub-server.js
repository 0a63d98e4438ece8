// A stand-in for the Chorus server, to work on the demo page and e2e.js without the
// Rust server: it serves the static files, POST /demo/token and the /v1/rtc signaling
// WebSocket (a minimal implementation), and forwards media through RTCPeerConnections
// in a page of its own headless Chromium (stub-sfu.js), speaking the protocol of
// docs/signaling.md: publisher offers from the client, subscriber offers from here,
// stream id = track_id. Tokens are NOT JWTs, nothing is checked, audio is not mixed.
//
//   PORT=7880 node tests/browser/stub/stub-server.js     (CHORUS_STUB=1 scripts/browser-test.sh runs it)
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { chromium } = require(path.join(__dirname, '..', 'node_modules', 'playwright-core'));
const STATIC = process.env.STATIC || path.join(__dirname, '..', '..', '..', 'crates', 'chorus-api', 'static');
const PORT = +(process.env.PORT || 7880);

let sfuPage;
const conns = new Map(); let nextConn = 1;

function wsSend(sock, text) {
  const payload = Buffer.from(text);
  let hdr;
  if (payload.length < 126) { hdr = Buffer.from([0x81, payload.length]); }
  else if (payload.length < 65536) { hdr = Buffer.alloc(4); hdr[0] = 0x81; hdr[1] = 126; hdr.writeUInt16BE(payload.length, 2); }
  else { hdr = Buffer.alloc(10); hdr[0] = 0x81; hdr[1] = 127; hdr.writeBigUInt64BE(BigInt(payload.length), 2); }
  sock.write(Buffer.concat([hdr, payload]));
}
function wsClose(sock, code, reason='') {
  const r = Buffer.from(reason); const b = Buffer.alloc(4 + r.length);
  b[0] = 0x88; b[1] = 2 + r.length; b.writeUInt16BE(code, 2); r.copy(b, 4);
  try { sock.write(b); sock.end(); } catch (e) {}
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && (req.url === '/' || req.url.startsWith('/?'))) {
    res.writeHead(200, {'content-type': 'text/html'}); return res.end(fs.readFileSync(path.join(STATIC, 'index.html')));
  }
  // The page's scripts (ES modules), as the server serves them: any static/*.js at the top.
  if (req.method === 'GET' && /^\/[\w-]+\.js$/.test(req.url) && fs.existsSync(path.join(STATIC, req.url.slice(1)))) {
    res.writeHead(200, {'content-type': 'text/javascript', 'cache-control': 'no-cache'}); return res.end(fs.readFileSync(path.join(STATIC, req.url.slice(1))));
  }
  if (req.method === 'POST' && req.url === '/demo/token') {
    let body = ''; req.on('data', d => body += d); req.on('end', () => {
      const {room, name} = JSON.parse(body);
      const token = Buffer.from(JSON.stringify({room, name, sub: name.toLowerCase() + '-' + crypto.randomBytes(3).toString('hex')})).toString('base64url');
      res.writeHead(200, {'content-type': 'application/json'});
      res.end(JSON.stringify({token, url: `ws://127.0.0.1:${PORT}/v1/rtc`}));
    }); return;
  }
  if (req.url === '/blank') { res.writeHead(200, {'content-type':'text/html'}); return res.end('<html><body></body></html>'); }
  res.writeHead(404); res.end('not found');
});

server.on('upgrade', (req, sock) => {
  const u = new URL(req.url, 'http://x');
  if (u.pathname !== '/v1/rtc') return sock.destroy();
  const key = req.headers['sec-websocket-key'];
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const id = nextConn++;
  let claims = null;
  try { claims = JSON.parse(Buffer.from(u.searchParams.get('access_token') || '', 'base64url').toString()); } catch (e) {}
  if (!claims) { wsSend(sock, JSON.stringify({type:'error', code:'token_malformed', message:'bad token'})); return wsClose(sock, 4401, 'token_malformed'); }
  conns.set(id, sock);
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 0x0f; let len = buf[1] & 0x7f; let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      const masked = buf[1] & 0x80; const mk = masked ? buf.slice(off, off + 4) : null; if (masked) off += 4;
      if (buf.length < off + len) return;
      const p = Buffer.from(buf.slice(off, off + len)); buf = buf.slice(off + len);
      if (mk) for (let i = 0; i < p.length; i++) p[i] ^= mk[i & 3];
      if (op === 1) sfuPage.evaluate(([id, t, c]) => window.fromClient(id, t, c), [id, p.toString(), claims]).catch(e => console.error('sfu', e.message));
      else if (op === 8) { wsClose(sock, 1000); }
    }
  });
  sock.on('close', () => { conns.delete(id); sfuPage.evaluate((id) => window.clientGone(id), id).catch(() => {}); });
  sock.on('error', () => {});
});

(async () => {
  await new Promise(r => server.listen(PORT, '127.0.0.1', r)); console.log('stub listening on', PORT);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--autoplay-policy=no-user-gesture-required', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--no-sandbox', '--disable-gpu', '--allow-loopback-in-peer-connection', '--disable-background-timer-throttling'] });
  sfuPage = await browser.newPage();
  sfuPage.on('console', m => { if (process.env.VERBOSE) console.log('[sfu]', m.text()); });
  sfuPage.on('pageerror', e => console.log('[sfu pageerror]', e.message));
  await sfuPage.exposeFunction('toClient', (id, text) => { const s = conns.get(id); if (s) wsSend(s, text); });
  await sfuPage.exposeFunction('closeClient', (id, code) => { const s = conns.get(id); if (s) wsClose(s, code); });
  await sfuPage.goto(`http://127.0.0.1:${PORT}/blank`).catch(()=>{});
  await sfuPage.evaluate(() => navigator.mediaDevices.getUserMedia({audio:true}).then(s => s.getTracks().forEach(t => t.stop())));
  await sfuPage.addScriptTag({ path: path.join(__dirname, 'stub-sfu.js') });
  
  process.on('SIGTERM', async () => { await browser.close(); process.exit(0); });
})();
