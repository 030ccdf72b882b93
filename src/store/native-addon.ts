// Where better-sqlite3's compiled half comes from. From a checkout or an npm install the package
// finds it in node_modules itself. A standalone executable (Node SEA) can require only built-in
// modules, so its addon ships beside the binary (scripts/package.mjs builds it for the binary's Node)
// and is loaded from there with a require rooted at the executable.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Declared at the top of a standalone executable's bundle; undeclared in a checkout. */
declare const MODELRELAY_STANDALONE: object | undefined;

export const SQLITE_ADDON_FILE = 'better_sqlite3.node';

/** better-sqlite3's options for opening a database with the addon sqliteAddon() chose. */
export function sqliteOptions(): { nativeBinding?: string } {
  const addon = sqliteAddon();
  // The typings allow only a path for nativeBinding; the library takes the loaded addon too.
  return addon ? { nativeBinding: addon as unknown as string } : {};
}

/** The addon object to hand better-sqlite3 as `nativeBinding`, or undefined to let it find its own. */
function sqliteAddon(): object | undefined {
  // A checkout run on another Node than npm ci compiled for (the suite on Node 24) names its own.
  const named = process.env['MODELRELAY_SQLITE_ADDON'];
  if (typeof MODELRELAY_STANDALONE === 'undefined' && !named) return undefined;
  const file = named || join(dirname(process.execPath), SQLITE_ADDON_FILE);
  try {
    return createRequire(process.execPath)(file) as object;
  } catch (err) {
    throw new Error(`cannot load SQLite's native addon ${file}${named ? ' (MODELRELAY_SQLITE_ADDON)' : ', which must sit beside the executable'}: ${(err as Error).message}`);
  }
}
