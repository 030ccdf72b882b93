// HTTPS and WSS on the relay's one port (--tls-cert / --tls-key). The pair is re-read on reload()
// (SIGHUP) and when either file changes, so a renewed certificate is served without a restart; a
// pair that doesn't load is logged and the one in use kept. A client that speaks plain HTTP to the
// port gets a 400 that says to use https://, not a TLS alert or a hang: a front listener looks at
// each connection's first byte (a TLS handshake starts with 0x16) before handing it to TLS.
import { X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { RelayError } from '../core/index.js';
import type { Logger } from '../log.js';
import { errorBody } from './render-error.js';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** First byte of a TLS record carrying a handshake. */
const TLS_HANDSHAKE = 0x16;
/** How often the files are looked at for a change (a stat each; renewals are rare). */
const WATCH_INTERVAL_MS = 2000;
const EXPIRY_WARNING_MS = 14 * 24 * 3600_000;

/** Reads and checks the pair; the error names the file and what is wrong with it. */
export function loadTlsPair(files: TlsFiles): TlsPair {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read the TLS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  const cert = read(files.certFile, 'certificate (--tls-cert)');
  const key = read(files.keyFile, 'key (--tls-key)');
  try {
    new X509Certificate(cert);
  } catch (err) {
    throw new Error(`the TLS certificate ${files.certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`the TLS key ${files.keyFile} does not go with the certificate ${files.certFile}, or is not a PEM key: ${(err as Error).message}`);
  }
  return { cert, key };
}

/** What the log says about a certificate. */
function describeCert(cert: Buffer): { subject: string; not_after: string; fingerprint256: string; expires_in_ms: number } {
  const x = new X509Certificate(cert);
  return { subject: x.subject.replace(/\n/g, ', '), not_after: x.validTo, fingerprint256: x.fingerprint256, expires_in_ms: Date.parse(x.validTo) - Date.now() };
}

const PLAIN_BODY = (host: string): string =>
  errorBody('openai', new RelayError('invalid_request', `This port speaks HTTPS: use https://${host}/ (and wss:// for workers).`));

export class TlsFront {
  private server: HttpsServer | undefined;
  private watching = false;

  constructor(
    private readonly files: TlsFiles,
    private readonly log: Logger,
    /** The pair in use; loaded by the caller first so a bad pair stops the start. */
    readonly initial: TlsPair,
  ) {
    this.logLoaded('TLS certificate loaded', initial.cert);
  }

  /**
   * The listener for the port: hands TLS connections to `https` and answers anything else with a
   * plain-HTTP 400. `firstByteTimeoutMs` bounds a connection that sends nothing at all.
   */
  front(https: HttpsServer, firstByteTimeoutMs: number): NetServer {
    this.server = https;
    return createNetServer({ noDelay: true }, (socket: Socket) => {
      socket.setTimeout(firstByteTimeoutMs, () => socket.destroy());
      socket.once('data', (first: Buffer) => {
        socket.setTimeout(0);
        socket.pause();
        socket.unshift(first); // TLSSocket feeds bytes already read into the handshake
        if (first[0] === TLS_HANDSHAKE) https.emit('connection', socket);
        else this.refusePlain(socket, first);
      });
      socket.on('error', () => socket.destroy());
    });
  }

  /** Re-reads the files; on success new connections get the new pair. Returns whether it loaded. */
  reload(reason: string): boolean {
    let pair: TlsPair;
    try {
      pair = loadTlsPair(this.files);
    } catch (err) {
      this.log.error({ reason, err: (err as Error).message }, 'TLS certificate reload failed; still serving the previous one');
      return false;
    }
    this.server?.setSecureContext({ cert: pair.cert, key: pair.key });
    this.logLoaded('TLS certificate reloaded', pair.cert, reason);
    return true;
  }

  /** Reloads when either file changes (polling: renames and symlink swaps count too). */
  watch(): void {
    if (this.watching) return;
    this.watching = true;
    const onChange = (now: { mtimeMs: number; ino: number; size: number }, before: { mtimeMs: number; ino: number; size: number }): void => {
      if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) this.reload('file changed');
    };
    for (const f of [this.files.certFile, this.files.keyFile]) watchFile(f, { interval: WATCH_INTERVAL_MS, persistent: false }, onChange);
  }

  stop(): void {
    if (!this.watching) return;
    this.watching = false;
    for (const f of [this.files.certFile, this.files.keyFile]) unwatchFile(f);
  }

  private refusePlain(socket: Socket, first: Buffer): void {
    const host = /\r\nhost: *([^\r\n]+)/i.exec(first.toString('latin1'))?.[1]?.trim() ?? 'this-host';
    const body = PLAIN_BODY(host.replace(/[^\w.:[\]-]/g, ''));
    socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    socket.resume(); // drain what the client still sends, so it reads the answer instead of a reset
  }

  private logLoaded(msg: string, cert: Buffer, reason?: string): void {
    const info = describeCert(cert);
    const { expires_in_ms, ...fields } = info;
    this.log.info({ ...fields, ...(reason ? { reason } : {}) }, msg);
    if (expires_in_ms < 0) this.log.error({ not_after: info.not_after }, 'the TLS certificate has expired: clients will refuse it');
    else if (expires_in_ms < EXPIRY_WARNING_MS) this.log.warn({ not_after: info.not_after }, 'the TLS certificate expires within two weeks');
  }
}
