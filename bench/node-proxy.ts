// The simplest Node reverse proxy, a second yardstick: `node bench/node-proxy.ts <listen-port> <backend-url>`.
// node:http in, an undici pool out (the two libraries the relay uses at its edges), nothing else:
// no queue, no routing, no second process. The relay can't cost less than this plus a hop.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [listenPort, backendUrl] = [Number(process.argv[2]), process.argv[3]];
if (!listenPort || !backendUrl) throw new Error('usage: node-proxy.ts <listen-port> <backend-url>');
const pool = new Pool(backendUrl, { connections: 256, headersTimeout: 0, bodyTimeout: 0 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length']);

createServer({ noDelay: true }, (req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k) && typeof v === 'string') headers[k] = v;
    pool.request({ method: 'POST', path: req.url!, headers, body: Buffer.concat(parts) }).then(
      (up) => {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(up.headers)) if (!HOP.has(k) && typeof v === 'string') out[k] = v;
        res.writeHead(up.statusCode, out);
        up.body.on('data', (c: Buffer) => res.write(c));
        up.body.on('end', () => res.end());
        up.body.on('error', () => res.destroy());
      },
      () => {
        res.writeHead(502);
        res.end();
      },
    );
  });
}).listen(listenPort, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
