// A FIFO of items with O(1) push, shift and unshift, used for the per-model wait queues.
// Removal from the middle is lazy: the owner marks an item dead and `peek` skips it later, so a
// cancelled request costs O(1) now and O(1) amortised when the head passes it.
export class Deque<T> {
  private buf: (T | undefined)[] = [];
  private head = 0;

  get rawLength(): number {
    return this.buf.length - this.head;
  }

  push(item: T): void {
    this.buf.push(item);
  }

  unshift(item: T): void {
    if (this.head > 0) this.buf[--this.head] = item;
    else this.buf.unshift(item);
  }

  /** First item for which `alive` holds; dead items in front of it are discarded. */
  peek(alive: (item: T) => boolean): T | undefined {
    while (this.head < this.buf.length) {
      const item = this.buf[this.head] as T;
      if (alive(item)) return item;
      this.drop();
    }
    return undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.buf.length) return undefined;
    const item = this.buf[this.head];
    this.drop();
    return item;
  }

  private drop(): void {
    this.buf[this.head++] = undefined;
    // Compact once the dead prefix dominates, so memory follows the live length.
    if (this.head >= 1024 && this.head * 2 >= this.buf.length) {
      this.buf = this.buf.slice(this.head);
      this.head = 0;
    } else if (this.head === this.buf.length) {
      this.buf.length = 0;
      this.head = 0;
    }
  }
}
