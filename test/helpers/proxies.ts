// Egress proxies for tests, in-process on 127.0.0.1: an HTTP CONNECT proxy and a SOCKS5 proxy, both
// with optional user/password, counting what they tunnel. Minimal on purpose: just the parts of
// RFC 9110 §9.3.6 (CONNECT) and RFC 1928/1929 (SOCKS5, user/password) a client exercises.
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface Tunnel {
  target: string;
  /** The credentials the client presented, as user:password (undefined: none). */
  credentials: string | undefined;
}

export interface TestProxy {
  url: string;
  port: number;
  tunnels: Tunnel[];
  /** Attempts refused for missing or wrong credentials. */
  refused: number;
  close(): Promise<void>;
}

interface Auth {
  user?: string;
  password?: string;
  /** Answer every CONNECT with 403 (a proxy whose policy forbids the destination). */
  forbid?: boolean;
}

function track(server: Server): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return async () => {
    for (const s of sockets) s.destroy();
    server.close();
    await once(server, 'close');
  };
}

/** Joins two sockets both ways; either one ending or failing takes the other down. */
function splice(a: Socket, b: Socket): void {
  a.pipe(b).pipe(a);
  const down = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', down).on('close', down);
  b.on('error', down).on('close', down);
}

export async function startConnectProxy(auth: Auth = {}): Promise<TestProxy> {
  const server = createHttpServer((req, res) => {
    // Only tunnels: a forwarded plain request is not what the worker should send.
    res.writeHead(405, { 'content-type': 'text/plain' }).end(`CONNECT only, got ${req.method} ${req.url}`);
  });
  const proxy: TestProxy = { url: '', port: 0, tunnels: [], refused: 0, close: track(server) };
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const header = req.headers['proxy-authorization'];
    const credentials = header?.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString() : undefined;
    if (auth.user !== undefined && credentials !== `${auth.user}:${auth.password}`) {
      proxy.refused++;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm="test"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    if (auth.forbid) {
      proxy.refused++;
      client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    const target = req.url ?? '';
    const colon = target.lastIndexOf(':');
    const host = target.slice(0, colon).replace(/^\[|\]$/g, '');
    proxy.tunnels.push({ target, credentials });
    const upstream = connect(Number(target.slice(colon + 1)), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      splice(client, upstream);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  proxy.port = (server.address() as AddressInfo).port;
  proxy.url = `http://127.0.0.1:${proxy.port}`;
  return proxy;
}

/** Reads exactly n bytes at a time from a socket that is not yet piped. */
function reader(s: Socket): (n: number) => Promise<Buffer> {
  let buf = Buffer.alloc(0);
  let want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  const pump = (): void => {
    if (want && buf.length >= want.n) {
      const out = buf.subarray(0, want.n);
      buf = buf.subarray(want.n);
      const w = want;
      want = undefined;
      w.resolve(out);
    }
  };
  const onData = (d: Buffer): void => {
    buf = Buffer.concat([buf, d]);
    pump();
  };
  s.on('data', onData);
  s.on('close', () => want?.reject(new Error('closed')));
  const read = (n: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      want = { n, resolve, reject };
      pump();
    });
  (read as { release?: () => Buffer }).release = () => {
    s.off('data', onData);
    return buf;
  };
  return read;
}

export async function startSocks5Proxy(auth: Auth = {}): Promise<TestProxy> {
  const server = createServer();
  const proxy: TestProxy = { url: '', port: 0, tunnels: [], refused: 0, close: track(server) };
  server.on('connection', (client) => {
    client.on('error', () => client.destroy());
    const read = reader(client);
    void (async () => {
      const [ver, nmethods] = await read(2);
      if (ver !== 5) return client.destroy();
      const methods = [...(await read(nmethods!))];
      let credentials: string | undefined;
      if (auth.user !== undefined) {
        if (!methods.includes(2)) return client.end(Buffer.from([5, 0xff]));
        client.write(Buffer.from([5, 2]));
        const [, ulen] = await read(2);
        const user = (await read(ulen!)).toString();
        const [plen] = await read(1);
        const password = (await read(plen!)).toString();
        credentials = `${user}:${password}`;
        if (user !== auth.user || password !== auth.password) {
          proxy.refused++;
          return client.end(Buffer.from([1, 1]));
        }
        client.write(Buffer.from([1, 0]));
      } else {
        client.write(Buffer.from([5, 0]));
      }
      const [, cmd, , atyp] = await read(4);
      let host: string;
      if (atyp === 1) host = [...(await read(4))].join('.');
      else if (atyp === 3) host = (await read((await read(1))[0]!)).toString();
      else if (atyp === 4) host = ((await read(16)).toString('hex').match(/.{4}/g) ?? []).join(':');
      else return client.destroy();
      const port = (await read(2)).readUInt16BE(0);
      if (cmd !== 1) return client.end(Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]));
      const target = `${host}:${port}`;
      proxy.tunnels.push({ target, credentials });
      const upstream = connect(port, host, () => {
        client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
        const rest = (read as { release?: () => Buffer }).release!();
        if (rest.length) upstream.write(rest);
        splice(client, upstream);
      });
      upstream.on('error', () => client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])));
    })().catch(() => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  proxy.port = (server.address() as AddressInfo).port;
  proxy.url = `socks5://127.0.0.1:${proxy.port}`;
  return proxy;
}
