// A fault-injecting TCP proxy, owned by the soak: a worker connects to the server through it, and
// the soak can cut its connections (RST both ways) or stall them (stop moving bytes without closing:
// a partition neither end notices until its heartbeat does). New connections are never stalled.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

interface Pair {
  client: Socket;
  upstream: Socket;
  stalled: boolean;
}

export class FaultProxy {
  private readonly server: Server;
  private readonly pairs = new Set<Pair>();
  port = 0;

  constructor(private readonly targetPort: number) {
    this.server = createServer({ noDelay: true }, (client) => this.accept(client));
  }

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Open connections through the proxy. */
  get size(): number {
    return this.pairs.size;
  }

  /** Resets every connection through the proxy now. */
  cut(): number {
    const n = this.pairs.size;
    for (const p of [...this.pairs]) this.drop(p);
    return n;
  }

  /** Stops moving bytes on every open connection (they stay open until `cutStalled` or `cut`). */
  stall(): number {
    for (const p of this.pairs) {
      p.stalled = true;
      p.client.unpipe(p.upstream);
      p.upstream.unpipe(p.client);
      p.client.pause();
      p.upstream.pause();
    }
    return this.pairs.size;
  }

  /** Resets the connections `stall` stopped, and only those: the worker's new one stays. */
  cutStalled(): number {
    const stalled = [...this.pairs].filter((p) => p.stalled);
    for (const p of stalled) this.drop(p);
    return stalled.length;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const upstream = connect({ host: '127.0.0.1', port: this.targetPort, noDelay: true });
    const pair: Pair = { client, upstream, stalled: false };
    this.pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    for (const s of [client, upstream]) {
      s.on('error', () => this.drop(pair));
      s.on('close', () => this.drop(pair));
    }
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    for (const s of [pair.client, pair.upstream]) {
      if (typeof s.resetAndDestroy === 'function' && s.readyState !== 'closed' && !s.destroyed && s.readyState !== 'opening') s.resetAndDestroy();
      else s.destroy();
    }
  }
}
