/**
 * Per-CPU perf buffers deliver in order per CPU but not across CPUs: a child's
 * exec on CPU 1 can be read before its parent's on CPU 0. This window holds
 * events for one drain interval and releases them merged by kernel time. (The
 * agent's lines have a window of their own, line-window.ts, released in turns
 * within a drain; this one serves the decoded events of the lab and `bench`.)
 *
 * The bound: an event stamped before the previous drain started was already
 * in its CPU's buffer when this drain read the buffers (the stamp is taken a few
 * microseconds before the output), so nothing older can still arrive. Events
 * are thus delayed by one to two intervals, and ordering holds for events whose
 * stamp-to-output gap is shorter than one interval (at least 5 ms: the agent
 * drains more often under load, see nextDrainPeriod in drain-period.ts).
 *
 * Each CPU's queue is already in time order, so releasing is a k-way merge:
 * O(events x CPUs with pending events), no sorting on the per-event path.
 */
export class Reorder<T> {
  private readonly queues = new Map<number, { items: T[]; keys: number[]; head: number }>();
  private prevDrain: number | null = null;

  /** `key` gives a time as a number (ns since boot fits a double exactly for ~104 days, and order is all that matters). */
  constructor(private readonly key: (v: T) => number) {}

  push(cpu: number, v: T): void {
    let q = this.queues.get(cpu);
    if (q === undefined) {
      q = { items: [], keys: [], head: 0 };
      this.queues.set(cpu, q);
    }
    q.items.push(v);
    q.keys.push(this.key(v));
  }

  /** Call after reading the buffers in a drain that started at `drainStart`. */
  release(drainStart: number): T[] {
    const cutoff = this.prevDrain;
    this.prevDrain = drainStart;
    return cutoff === null ? [] : this.merge(cutoff);
  }

  flush(): T[] {
    return this.merge(Infinity);
  }

  private merge(cutoff: number): T[] {
    const out: T[] = [];
    const qs = [...this.queues.values()];
    for (;;) {
      let best: { items: T[]; keys: number[]; head: number } | null = null;
      let bestKey = cutoff;
      for (const q of qs) {
        if (q.head < q.items.length) {
          const k = q.keys[q.head]!;
          if (k < bestKey) {
            best = q;
            bestKey = k;
          }
        }
      }
      if (best === null) break;
      out.push(best.items[best.head++]!);
    }
    for (const q of qs) {
      if (q.head > 0) {
        q.items.splice(0, q.head);
        q.keys.splice(0, q.head);
        q.head = 0;
      }
    }
    return out;
  }
}
