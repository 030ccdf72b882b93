// Cuts a decoded text stream at SSE event boundaries, so each forwarded chunk holds whole events
// (and, since its input is already decoded text, never half a UTF-8 character).
export class SseSplitter {
  private pending = '';

  /** Returns every complete event in `text` (plus earlier leftovers), or '' if none is complete yet. */
  push(text: string): string {
    const buf = this.pending + text;
    // An event ends with a blank line: "\n\n" or "\r\n\r\n".
    const lf = buf.lastIndexOf('\n\n');
    const crlf = buf.lastIndexOf('\r\n\r\n');
    const end = Math.max(lf < 0 ? -1 : lf + 2, crlf < 0 ? -1 : crlf + 4);
    if (end < 0) {
      this.pending = buf;
      return '';
    }
    this.pending = buf.slice(end);
    return end === buf.length ? buf : buf.slice(0, end);
  }

  /** Whatever is left when the stream ends (a backend that didn't end its last event properly). */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }

  get buffered(): number {
    return this.pending.length;
  }
}
