// A binary min-heap of deadlines. Entries are validated lazily by their consumer: a deadline that moved
// (an active stream pushes its idle deadline forward on every chunk) is re-armed when it surfaces, so
// the hot path only writes a timestamp.
export interface Deadline<K extends string = string> {
  at: number;
  kind: K;
  id: string;
}

export class DeadlineHeap<K extends string = string> {
  private items: Deadline<K>[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Deadline<K> | undefined {
    return this.items[0];
  }

  push(d: Deadline<K>): void {
    const a = this.items;
    a.push(d);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.at <= d.at) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = d;
  }

  pop(): Deadline<K> | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    let i = 0;
    const n = a.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && a[r]!.at < a[l]!.at ? r : l;
      if (a[c]!.at >= last.at) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }
}
