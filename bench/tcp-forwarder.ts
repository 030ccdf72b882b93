// A byte pipe, the floor of any relay: `node bench/tcp-forwarder.ts <listen-port> <target-port>` accepts
// on 127.0.0.1 and pipes each connection to the target, both ways, without looking at a byte. Two
// chained (client → pipe → pipe → backend, one process each) show what two extra processes cost on
// this machine before any HTTP, framing or routing: the baseline the relay's overhead is read against.
import { connect, createServer } from 'node:net';

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
if (!listenPort || !targetPort) throw new Error('usage: tcp-forwarder.ts <listen-port> <target-port>');
createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: '127.0.0.1', port: targetPort!, noDelay: true });
  client.pipe(upstream).on('error', () => client.destroy());
  upstream.pipe(client).on('error', () => upstream.destroy());
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}).listen(listenPort, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
