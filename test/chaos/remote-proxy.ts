// The soak's handle on the fault proxies, which run in a process of their own (proxy-host.ts).
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export class ProxyHost {
  private child: ChildProcess | undefined;
  private next = 0;
  private readonly pending = new Map<number, { resolve(v: number): void; reject(e: Error): void }>();

  async start(): Promise<void> {
    this.child = fork(fileURLToPath(new URL('./proxy-host.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = once(this.child, 'message');
    this.child.on('message', (m: { id?: number; value?: number; error?: string }) => {
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.value!);
    });
    await ready;
  }

  call(cmd: Record<string, unknown>): Promise<number> {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child!.send({ id, ...cmd });
    });
  }

  async proxy(targetPort: number): Promise<RemoteProxy> {
    return new RemoteProxy(this, await this.call({ op: 'listen', target: targetPort }));
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** One worker's proxy: the worker connects to `url`, which forwards to the server. */
export class RemoteProxy {
  constructor(
    private readonly host: ProxyHost,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resets every connection through the proxy; resolves with how many there were. */
  cut(): Promise<number> {
    return this.host.call({ op: 'cut', proxy: this.port });
  }

  /** Stops every open connection moving bytes, without closing it. */
  stall(): Promise<number> {
    return this.host.call({ op: 'stall', proxy: this.port });
  }

  /** Resets the connections `stall` stopped (not ones opened since). */
  cutStalled(): Promise<number> {
    return this.host.call({ op: 'cut-stalled', proxy: this.port });
  }
}
