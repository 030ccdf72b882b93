// The worker's model names: the public names it advertises to the server, and what its backend calls
// each. A client keeps asking for `chat` while the operator swaps the model behind it; the request
// runner rewrites the body's `model` to the backend's name (protocol/body-model.ts).
//
// Sources: `--models 'chat=qwen2.5:7b-instruct,llama3.2'` (public=backend, or a plain name), or the
// backend's own list (`--models auto`) renamed by `--model-map backend=public` entries. Ollama's
// `name` and `name:latest` are one model: a backend name ending in `:latest` is advertised bare too,
// and a map entry for either spelling matches it.

const LATEST = ':latest';

export interface ModelEntry {
  /** What clients ask for (advertised). */
  name: string;
  /** What the backend calls it. */
  backend: string;
}

/** `--models` entries: `public=backend` or a plain name. Throws on an empty side or a public name
 * listed twice. */
export function parseModelEntries(entries: readonly string[]): ModelEntry[] {
  const out: ModelEntry[] = [];
  const seen = new Set<string>();
  for (const raw of entries) {
    const e = raw.trim();
    if (e === '') continue;
    const eq = e.indexOf('=');
    const name = (eq < 0 ? e : e.slice(0, eq)).trim();
    const backend = (eq < 0 ? e : e.slice(eq + 1)).trim();
    if (name === '' || backend === '') throw new Error(`'${e}' must be NAME or PUBLIC=BACKEND`);
    if (name === '*' || backend === '*') throw new Error(`'${e}': '*' stands for every model and can't be renamed`);
    if (seen.has(name)) throw new Error(`the public name '${name}' is listed twice`);
    seen.add(name);
    out.push({ name, backend });
  }
  return out;
}

/** `--model-map backend=public` entries, as backend (bare of `:latest`) → public names. */
export function parseModelMap(entries: readonly string[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  const publics = new Set<string>();
  for (const raw of entries) {
    const e = raw.trim();
    const eq = e.indexOf('=');
    const backend = eq < 0 ? '' : e.slice(0, eq).trim();
    const name = eq < 0 ? '' : e.slice(eq + 1).trim();
    if (backend === '' || name === '') throw new Error(`'${e}' must be BACKEND=PUBLIC`);
    if (publics.has(name)) throw new Error(`the public name '${name}' is mapped twice`);
    publics.add(name);
    const key = bare(backend);
    map.set(key, [...(map.get(key) ?? []), name]);
  }
  return map;
}

export class ModelNames {
  /** Public names, in the order they were listed or discovered. */
  readonly advertised: string[];
  /** Public → backend, only where they differ. */
  private readonly renamed: Map<string, string>;

  private constructor(entries: ModelEntry[]) {
    const byName = new Map<string, string>();
    for (const e of entries) if (!byName.has(e.name)) byName.set(e.name, e.backend);
    this.advertised = [...byName.keys()];
    this.renamed = new Map([...byName].filter(([name, backend]) => name !== backend));
  }

  /** From `--models` entries (parseModelEntries), with the `:latest` twins of plain names. */
  static listed(entries: readonly ModelEntry[]): ModelNames {
    return new ModelNames(withTwins(entries.map((e) => ({ ...e, plain: e.name === e.backend }))));
  }

  /** From the backend's list, renamed by the map: a mapped name is advertised only under its public
   * names; the others as they are, with their `:latest` twins. */
  static discovered(backendNames: readonly string[], map: ReadonlyMap<string, readonly string[]>): ModelNames {
    const mapped: ModelEntry[] = [];
    const plain: (ModelEntry & { plain: boolean })[] = [];
    for (const backend of backendNames) {
      const publics = map.get(bare(backend));
      if (publics) for (const name of publics) mapped.push({ name, backend });
      else plain.push({ name: backend, backend, plain: true });
    }
    // A mapped public name wins over a backend model of the same name.
    return new ModelNames([...mapped, ...withTwins(plain)]);
  }

  /** Whether any public name differs from its backend's (some bodies need rewriting). */
  get rewrites(): boolean {
    return this.renamed.size > 0;
  }

  /** The backend's name for a public name when it differs (rewrite the body), else undefined. */
  backendFor(name: string): string | undefined {
    return this.renamed.get(name);
  }

  /** Map entries that matched no backend model (for a warning). */
  static unmatched(backendNames: readonly string[], map: ReadonlyMap<string, readonly string[]>): string[] {
    const present = new Set(backendNames.map(bare));
    return [...map.keys()].filter((k) => !present.has(k));
  }
}

/** The entries, then the bare twin of each plain `name:latest` no entry already claims. */
function withTwins(entries: readonly (ModelEntry & { plain: boolean })[]): ModelEntry[] {
  const out: ModelEntry[] = entries.map(({ name, backend }) => ({ name, backend }));
  const taken = new Set(out.map((e) => e.name));
  for (const e of entries) {
    if (!e.plain || !e.name.endsWith(LATEST)) continue;
    const twin = bare(e.name);
    if (twin === '' || taken.has(twin)) continue;
    taken.add(twin);
    out.push({ name: twin, backend: e.backend });
  }
  return out;
}

function bare(name: string): string {
  return name.endsWith(LATEST) ? name.slice(0, -LATEST.length) : name;
}
