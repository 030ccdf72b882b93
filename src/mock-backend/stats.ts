// Counters of the mock backend, shared by the HTTP handler and the in-process / HTTP stats views.

import type { MockRequestRecord, MockStats } from './types.js';

export class MockCounters {
  requests = 0;
  active = 0;
  maxActive = 0;
  completed = 0;
  aborted = 0;
  resets = 0;
  lastRequest: MockRequestRecord | null = null;
  byPath: Record<string, number> = Object.create(null) as Record<string, number>;

  hit(path: string): void {
    this.byPath[path] = (this.byPath[path] ?? 0) + 1;
  }

  begin(): void {
    this.requests++;
    this.active++;
    if (this.active > this.maxActive) this.maxActive = this.active;
  }

  end(outcome: 'completed' | 'aborted' | 'reset'): void {
    this.active--;
    if (outcome === 'completed') this.completed++;
    else if (outcome === 'aborted') this.aborted++;
    else this.resets++;
  }

  reset(): void {
    this.requests = this.completed = this.aborted = this.resets = 0;
    // requests still open stay open, so the high-water mark starts from them
    this.maxActive = this.active;
    this.lastRequest = null;
    this.byPath = Object.create(null) as Record<string, number>;
  }

  snapshot(): MockStats {
    return {
      requests: this.requests,
      active: this.active,
      maxActive: this.maxActive,
      completed: this.completed,
      aborted: this.aborted,
      resets: this.resets,
      lastRequest: this.lastRequest,
      byPath: { ...this.byPath },
    };
  }
}
