// A global budget for request body bytes held in memory: a body is charged from its first byte (or
// its declared length, before any is read) until its answer is done, since a queued or running
// request keeps its body for a retry. Slow uploads can't add up to more than the budget.
export class BodyBudget {
  private used = 0;

  /** `limit` 0 = no cap. */
  constructor(private readonly limit: number) {}

  get bytesHeld(): number {
    return this.used;
  }

  /** Takes `bytes` from the budget; false (and nothing taken) when they don't fit. */
  take(bytes: number): boolean {
    if (this.limit > 0 && this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}
