/**
 * Per-CPU perf buffers deliver in order per CPU but not across CPUs: a child's
 * exec on CPU 1 can be read before its parent's on CPU 0. This window holds
 * events for one drain interval and releases them sorted by kernel time.
 *
 * The bound: an event stamped before the previous drain started was already
 * in its CPU's buffer when this drain read the buffers (the stamp is taken a few
 * microseconds before the output), so nothing older can still arrive. Events
 * are thus delayed by one to two intervals, and ordering holds for events whose
 * stamp-to-output gap is shorter than one interval.
 */
export class Reorder<T> {
  private pending: T[] = [];
  private prevDrain: bigint | null = null;

  constructor(private readonly key: (v: T) => bigint) {}

  push(v: T): void {
    this.pending.push(v);
  }

  /** Call after reading the buffers in a drain that started at `drainStart`. */
  release(drainStart: bigint): T[] {
    const cutoff = this.prevDrain;
    this.prevDrain = drainStart;
    if (cutoff === null || this.pending.length === 0) return [];
    const k = this.key;
    this.pending.sort((a, b) => (k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0));
    let n = 0;
    while (n < this.pending.length && k(this.pending[n]!) < cutoff) n++;
    return this.pending.splice(0, n);
  }

  flush(): T[] {
    const k = this.key;
    const all = this.pending.sort((a, b) => (k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0));
    this.pending = [];
    return all;
  }
}
