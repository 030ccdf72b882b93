// What a standalone executable carries inside itself that a checkout reads from disk. scripts/package.mjs
// bundles each command with esbuild into a Node single-executable application and puts
// `var MODELRELAY_STANDALONE = {...}` at the top of the bundle; in a checkout the name is undeclared.
export interface Standalone {
  version: string;
  /** Files under src/ a command reads at run time (the dashboard's), by their path there. */
  files: Record<string, string>;
}

declare const MODELRELAY_STANDALONE: Standalone | undefined;

export const STANDALONE: Standalone | undefined = typeof MODELRELAY_STANDALONE === 'undefined' ? undefined : MODELRELAY_STANDALONE;
