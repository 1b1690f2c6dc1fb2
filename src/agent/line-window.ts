/**
 * The reorder window for rendered lines (perf buffers, ordered): each CPU's
 * lines in kernel-time order, released merged across CPUs once they are older
 * than a bound the session gives (nothing older can still come: see
 * REORDER_MARGIN_NS in session.ts).
 *
 * A line is rendered once, into its CPU's segment for the current drain, and
 * handed out from there: most go out in the drain that read them, the newest
 * are held for the next one, and a segment whose lines are all out goes back
 * to a pool. Moving the lines still held to the front of one buffer instead
 * cost a copy of each held line.
 */
import { ByteBuf } from "../output/bytebuf.ts";

/**
 * A segment's buffer, allocated at this size. A line that would not fit the
 * room left (the renderer's worst case for the record, out()'s `need`) starts
 * another segment, so a buffer never grows: without the bound a segment grew
 * (by doubling) to the largest drain it ever held and kept that size in the
 * pool, 11-16 MiB of segments holding at most 0.6 MB of lines after an exec
 * storm, and a first storm paid a page fault for every fresh 4 KiB of them.
 */
export const SEGMENT_BYTES = 1 << 18;
/** Spare segments kept for the next drains, at least this many (4 MiB), and two per CPU besides. */
const SPARE_MIN = 16;

/** Where a released line goes: bytes [start, end) of buf. */
export type LineSink = (buf: Buffer, start: number, end: number) => void;

/** One drain's lines from one CPU, in the order read (kernel-time order within a CPU). */
interface Segment {
  out: ByteBuf;
  keys: number[];
  starts: number[];
  ends: number[];
  /** The next line to release. */
  head: number;
  drain: number;
}

export class LineWindow {
  /** Per CPU, its segments oldest first; lines go into the last one. */
  private readonly queues = new Map<number, Segment[]>();
  private readonly all: Segment[][] = [];
  private readonly spare: Segment[] = [];
  private drain = 0;
  private current: Segment | null = null;
  private currentQueue: Segment[] | null = null;

  /**
   * Takes over two of `other`'s spare segments per CPU (the warm-up's window,
   * once it is over; the rest go to the GC): the spare list then has the
   * shape (an array that has held segments, not a fresh empty one) the JIT
   * compiled out() for, instead of exiting from its optimized code at each
   * segment the first burst opens. More would only hold memory until a burst.
   */
  adoptSpare(other: LineWindow): void {
    const keep = 2 * Math.max(1, other.all.length);
    for (const seg of other.spare.splice(0, keep)) this.spare.push(seg);
    other.spare.length = 0;
  }

  /** A new drain: lines from here on go into new segments. */
  nextDrain(): void {
    this.drain++;
  }

  /** The buffer `cpu`'s next line is rendered into, with room for `need` bytes (push() then records it). */
  out(cpu: number, need = 0): ByteBuf {
    let q = this.queues.get(cpu);
    if (q === undefined) {
      q = [];
      this.queues.set(cpu, q);
      this.all.push(q);
    }
    // Not q[-1] on an empty queue (every drain's first line on a CPU): the JIT's code for this exits on it.
    let seg = q.length > 0 ? q[q.length - 1] : undefined;
    if (seg === undefined || seg.drain !== this.drain || seg.out.len + need > seg.out.buf.length) {
      seg = this.spare.pop() ?? { out: new ByteBuf(SEGMENT_BYTES), keys: [], starts: [], ends: [], head: 0, drain: 0 };
      seg.drain = this.drain;
      q.push(seg);
    }
    this.current = seg;
    this.currentQueue = q;
    return seg.out;
  }

  /**
   * The line out() made room for was not rendered (the general path refused
   * its record; filtered records never ask for room): a segment opened for it
   * and holding nothing goes back, so no queue ever holds an empty one (one
   * left behind was a path the warm-up never ran: the JIT threw away
   * release()'s optimized code in the first storm).
   */
  unused(): void {
    const seg = this.current;
    const q = this.currentQueue;
    if (seg === null || q === null || seg.keys.length > 0 || q[q.length - 1] !== seg) return;
    q.pop();
    this.recycle(seg);
  }

  /** The line just rendered into out(): bytes [start, end), kernel time `key` (ns, as a double). */
  push(key: number, start: number, end: number): void {
    const seg = this.current!;
    seg.keys.push(key);
    seg.starts.push(start);
    seg.ends.push(end);
  }

  /** Hands out every line older than `cutoff`, oldest first across CPUs (Infinity: all of them). */
  release(cutoff: number, onLine: LineSink): void {
    const qs = this.all;
    for (;;) {
      let best: Segment | null = null;
      let bestQ: Segment[] | null = null;
      let bestKey = cutoff;
      for (const q of qs) {
        const seg = this.front(q);
        if (seg !== undefined && seg.keys[seg.head]! < bestKey) {
          best = seg;
          bestQ = q;
          bestKey = seg.keys[seg.head]!;
        }
      }
      if (best === null) break;
      onLine(best.out.buf, best.starts[best.head]!, best.ends[best.head]!);
      if (++best.head === best.keys.length) this.recycle(bestQ!.shift()!);
    }
  }

  /** How many lines are held, not yet handed out (at a stop whose last drain failed: lines never written). */
  held(): number {
    let n = 0;
    for (const q of this.all) for (const seg of q) n += seg.keys.length - seg.head;
    return n;
  }

  /** Drops every line held (the warm-up's, which go nowhere). */
  clear(): void {
    for (const q of this.all) while (q.length > 0) this.recycle(q.shift()!);
    this.current = null;
    this.currentQueue = null;
  }

  /** A queue's oldest segment with a line left in it; emptied ones (all out, or only filtered lines) go back. */
  private front(q: Segment[]): Segment | undefined {
    let seg = q[0];
    while (seg !== undefined && seg.head >= seg.keys.length && (q.length > 1 || seg.drain !== this.drain)) {
      this.recycle(q.shift()!);
      seg = q[0];
    }
    return seg !== undefined && seg.head < seg.keys.length ? seg : undefined;
  }

  private recycle(seg: Segment): void {
    seg.out.len = 0;
    seg.keys.length = 0;
    seg.starts.length = 0;
    seg.ends.length = 0;
    seg.head = 0;
    if (this.current === seg) {
      this.current = null;
      this.currentQueue = null;
    }
    // A segment that a line larger than SEGMENT_BYTES grew is not kept.
    if (this.spare.length < SPARE_MIN + 2 * this.all.length && seg.out.buf.length <= SEGMENT_BYTES)
      this.spare.push(seg);
  }
}
