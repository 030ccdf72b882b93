// `modelrelay healthcheck`: asks the local server's /health, for a container's HEALTHCHECK (an
// image without curl). The address is the server's own: --listen (LISTEN_ADDR), over HTTPS when
// TLS_CERT is set (the certificate is not checked: this is the machine itself). Exit 0 when healthy.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parseListen } from './flags.js';

const TIMEOUT_MS = 4000;

function main(): void {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--listen');
  const listen = (i >= 0 ? argv[i + 1] : undefined) ?? process.env['LISTEN_ADDR'] ?? '0.0.0.0:8080';
  let { host, port } = parseListen(listen);
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  if (host === '::') host = '::1';
  const tls = (process.env['TLS_CERT'] ?? '') !== '';
  const req = (tls ? httpsRequest : httpRequest)({ host, port, path: '/health', method: 'GET', timeout: TIMEOUT_MS, rejectUnauthorized: false }, (res) => {
    res.resume();
    res.on('end', () => {
      if (res.statusCode === 200) process.exit(0);
      process.stderr.write(`unhealthy: /health answered ${res.statusCode}\n`);
      process.exit(1);
    });
  });
  req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
  req.on('error', (err) => {
    process.stderr.write(`unhealthy: ${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}/health: ${err.message}\n`);
    process.exit(1);
  });
  req.end();
}

main();
