// Where the server keeps its store when --data-dir is not given: a `modelrelay` folder in the
// user's data directory, by each platform's convention.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return join(env['APPDATA'] ?? join(homedir(), 'AppData', 'Roaming'), 'modelrelay');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'modelrelay');
  const xdg = env['XDG_DATA_HOME'];
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'share'), 'modelrelay');
}
