// Server-side model aliases and groups: `NAME=TARGET|TARGET…`. A request for NAME is served by any
// worker serving any TARGET (the scheduler routes across all of them), and the body's `model` becomes
// the target chosen. Fixed at start; pure data with the two look-ups the scheduler needs.
//
// Rules: a NAME hides a worker model of the same name unless it lists itself as a target
// (`llama3=llama3|llama3:8b`); targets are model names, never other aliases (no chains to follow).

export interface ModelAlias {
  name: string;
  /** In the operator's order: the first one a chosen worker serves is the one it gets. */
  targets: readonly string[];
}

export class ModelAliases {
  private readonly byName = new Map<string, ModelAlias>();
  /** target → the aliases listing it. */
  private readonly byTarget = new Map<string, ModelAlias[]>();

  /** From `NAME=TARGET[|TARGET…]` entries; throws with the entry at fault. */
  static parse(entries: readonly string[], maxNameLength = Infinity): ModelAliases {
    const aliases: ModelAlias[] = [];
    for (const raw of entries) {
      const e = raw.trim();
      if (e === '') continue;
      const eq = e.indexOf('=');
      const name = eq < 0 ? '' : e.slice(0, eq).trim();
      const targets = eq < 0 ? [] : e.slice(eq + 1).split('|').map((t) => t.trim());
      if (name === '' || targets.length === 0 || targets.some((t) => t === '')) throw new Error(`'${e}' must be NAME=TARGET[|TARGET…]`);
      for (const n of [name, ...targets]) {
        if (n === '*') throw new Error(`'${e}': '*' stands for every model and can't be an alias or a target`);
        if (n.length > maxNameLength) throw new Error(`'${e}': names are at most ${maxNameLength} characters`);
      }
      aliases.push({ name, targets: [...new Set(targets)] });
    }
    return new ModelAliases(aliases);
  }

  constructor(aliases: readonly ModelAlias[] = []) {
    for (const a of aliases) {
      if (this.byName.has(a.name)) throw new Error(`the alias '${a.name}' is defined twice`);
      this.byName.set(a.name, a);
    }
    for (const a of aliases) {
      for (const t of a.targets) {
        if (t !== a.name && this.byName.has(t)) throw new Error(`the alias '${a.name}' lists the alias '${t}': list its targets instead (aliases don't chain)`);
        let list = this.byTarget.get(t);
        if (!list) this.byTarget.set(t, (list = []));
        list.push(a);
      }
    }
  }

  get size(): number {
    return this.byName.size;
  }

  get(name: string): ModelAlias | undefined {
    return this.byName.get(name);
  }

  /** The aliases that list `model` among their targets (empty for most models). */
  listing(model: string): readonly ModelAlias[] {
    return this.byTarget.get(model) ?? NONE;
  }

  all(): ModelAlias[] {
    return [...this.byName.values()];
  }
}

const NONE: readonly ModelAlias[] = [];
