// The standalone executable's entry (scripts/package.mjs): one binary for every command, chosen by
// the name it runs under (modelrelay-server, modelrelay-worker and modelrelay-mock-backend are links
// to it, busybox-style), or else by its first argument (`modelrelay worker --proxy-url …`). One
// binary rather than one per command: each carries a whole Node, about 100 MiB.
import { basename } from 'node:path';
import { VERSION } from '../version.js';

const COMMANDS: Record<string, () => Promise<unknown>> = {
  server: () => import('./server.js'),
  worker: () => import('./worker.js'),
  'mock-backend': () => import('./mock-backend.js'),
  healthcheck: () => import('./healthcheck.js'),
};

const USAGE = `modelrelay ${VERSION}: run as modelrelay-server, modelrelay-worker or modelrelay-mock-backend (links to this file), or as

  modelrelay server [flags]        the relay
  modelrelay worker [flags]        a worker, next to its backends
  modelrelay mock-backend [flags]  the simulated backend the tests use
  modelrelay healthcheck           exit 0 if the server on LISTEN_ADDR answers /health (for containers)

Each command's --help lists its flags.
`;

const named = /modelrelay-(server|worker|mock-backend)/.exec(basename(process.argv0))?.[1];
const first = process.argv[2];
if (named) {
  void COMMANDS[named]!();
} else if (first !== undefined && first in COMMANDS) {
  process.argv.splice(2, 1);
  void COMMANDS[first]!();
} else if (first === '--version') {
  process.stdout.write(`${VERSION}\n`);
} else if (first === '--help' || first === undefined) {
  process.stdout.write(USAGE);
} else {
  process.stderr.write(`modelrelay: unknown command '${first}'\n\n${USAGE}`);
  process.exitCode = 2;
}
