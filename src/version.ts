// The package version, read once from package.json (or from the standalone executable, which has
// no package.json beside it) so every command reports the same.
import { readFileSync } from 'node:fs';
import { STANDALONE } from './standalone.js';

export const VERSION: string = (() => {
  if (STANDALONE) return STANDALONE.version;
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
