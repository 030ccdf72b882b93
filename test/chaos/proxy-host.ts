// The soak's fault proxies live in this small process of their own, so that the soak's own load
// (many clients, checking every answer) can never hold up the worker links and pass for a fault.
// Commands arrive over the IPC channel: { id, op: 'listen', target } | { id, op: 'cut' | 'stall' | 'cut-stalled', proxy }.
import { FaultProxy } from './tcp-proxy.js';

type Command = { id: number; op: 'listen'; target: number } | { id: number; op: 'cut' | 'stall' | 'cut-stalled'; proxy: number };

const proxies = new Map<number, FaultProxy>();

process.on('message', (c: Command) => {
  void (async () => {
    try {
      if (c.op === 'listen') {
        const p = new FaultProxy(c.target);
        await p.listen();
        proxies.set(p.port, p);
        process.send!({ id: c.id, value: p.port });
      } else {
        const p = proxies.get(c.proxy);
        if (!p) throw new Error(`no proxy on port ${c.proxy}`);
        process.send!({ id: c.id, value: c.op === 'cut' ? p.cut() : c.op === 'stall' ? p.stall() : p.cutStalled() });
      }
    } catch (err) {
      process.send!({ id: c.id, error: (err as Error).message });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
