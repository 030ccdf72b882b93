// A binary min-heap of deadlines with O(log n) removal. Entries may also be validated lazily by their
// consumer: a deadline that moved (an active stream pushes its idle deadline forward on every chunk)
// is re-armed when it surfaces, so the hot path only writes a timestamp. Entries that can no longer
// fire (a finished request's) are removed, so the heap never holds more than the live deadlines.
export interface Deadline<K extends string = string> {
  at: number;
  kind: K;
  id: string;
  /** Position in the heap, -1 once popped or removed. */
  pos: number;
}

export class DeadlineHeap<K extends string = string> {
  private items: Deadline<K>[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Deadline<K> | undefined {
    return this.items[0];
  }

  push(entry: { at: number; kind: K; id: string }): Deadline<K> {
    const d = entry as Deadline<K>;
    d.pos = this.items.length;
    this.items.push(d);
    this.up(d.pos);
    return d;
  }

  pop(): Deadline<K> | undefined {
    const top = this.items[0];
    if (top) this.removeAt(0);
    return top;
  }

  remove(d: Deadline<K> | undefined): void {
    if (d && d.pos >= 0 && this.items[d.pos] === d) this.removeAt(d.pos);
  }

  private removeAt(i: number): void {
    const a = this.items;
    const gone = a[i]!;
    const last = a.pop()!;
    gone.pos = -1;
    if (i === a.length) return;
    a[i] = last;
    last.pos = i;
    this.down(i);
    this.up(last.pos);
  }

  private up(i: number): void {
    const a = this.items;
    const d = a[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (parent.at <= d.at) break;
      a[i] = parent;
      parent.pos = i;
      i = p;
    }
    a[i] = d;
    d.pos = i;
  }

  private down(i: number): void {
    const a = this.items;
    const n = a.length;
    const d = a[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && a[r]!.at < a[l]!.at ? r : l;
      const child = a[c]!;
      if (child.at >= d.at) break;
      a[i] = child;
      child.pos = i;
      i = c;
    }
    a[i] = d;
    d.pos = i;
  }
}
