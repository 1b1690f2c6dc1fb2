/**
 * The last renderings of runs of fields that repeat from one record to the
 * next: a syscall record's process (its ids, names, exec ids, pid_tree, exe),
 * an exec's parent (namespaces, the executable, inherited fds). A storm's
 * records repeat them, and comparing the bytes they come from costs a
 * fraction of writing them again. The key is every byte a run is rendered
 * from, so a hit writes exactly what rendering would: a stale line cannot
 * happen by construction, not by invalidation.
 *
 * A run is described by an Int32Array that scripts/render-gen.ts generates:
 * [bank, ranges, start0, end0, ..., strings, index0, ...]: its own entries,
 * the record's byte ranges it reads (whole 4-byte words) and the string spans
 * it writes.
 */

/** A native copy between byte arrays without a subarray object for the source (Buffer's copy takes any Uint8Array). */
const copyBytes = Buffer.prototype.copy as (
  this: Uint8Array,
  target: Uint8Array,
  targetStart: number,
  sourceStart: number,
  sourceEnd: number,
) => number;

/** Entries per run, direct-mapped by pid: the few processes of one drain rarely collide. */
const ENTRIES = 16;
/** Record bytes kept per entry (up to the last byte a run reads); a longer record's run is not kept. */
const RECORD_CAP = 8192;
/** Rendered bytes at most. */
const OUT_CAP = 4096;
/** Entries' buffers grow in these steps, when first used: most of a host's entries never are. */
const GRAIN = 1024;
/** `n` rounded up to whole grains (n ≤ RECORD_CAP). */
const grains = (n: number): number => (n + GRAIN - 1) & -GRAIN;
/** Strings per run at most (render-gen's runs have up to 9). */
const MAX_STRINGS = 16;
/**
 * A run that missed this many times in a row is not looked up (nor kept) for
 * the next SKIP records of it, then asked again: records whose run never
 * repeats (every exec from another parent) pay for two misses in SKIP + 2,
 * not for each.
 */
export const STREAK = 8;
const SKIP = 56;

export class RunMemo {
  /** Each entry's record bytes, a native copy at keep(), at their own offsets. */
  private readonly recs: Uint8Array[];
  private readonly recWords: Int32Array[];
  private static readonly NONE = new Uint8Array(0);
  /** Each entry's bank (-1: empty), flag bits, and its strings' spans in `recs`. */
  private readonly bankOf: Int32Array;
  private readonly bitsOf: Int32Array;
  private readonly strOff: Int32Array;
  private readonly strLen: Int32Array;
  /** Each entry's rendering, and its length. */
  private readonly outs: Uint8Array[];
  private readonly outLen: Int32Array;
  /** Per run: misses in a row, and records left to pass over. */
  private readonly streak: Int32Array;
  private readonly skip: Int32Array;
  /** The entry and flag bits the last copy() missed: what keep() fills (-1: passed over, keep nothing). */
  private entry = -1;
  private bits = 0;
  /** For tests and the benchmark. */
  hits = 0;
  misses = 0;

  /**
   * `banks`: how many runs the generated renderers keep (lines.gen.ts's
   * RUN_BANKS); `passOver`: whether a run that keeps missing is passed over
   * (false for tests that must compare every record's key).
   */
  constructor(
    banks: number,
    private readonly passOver = true,
  ) {
    const n = banks * ENTRIES;
    this.recs = Array.from({ length: n }, () => RunMemo.NONE);
    this.recWords = Array.from({ length: n }, () => new Int32Array(0));
    this.bankOf = new Int32Array(n).fill(-1);
    this.bitsOf = new Int32Array(n);
    this.strOff = new Int32Array(n * MAX_STRINGS);
    this.strLen = new Int32Array(n * MAX_STRINGS);
    this.outs = Array.from({ length: n }, () => RunMemo.NONE);
    this.outLen = new Int32Array(n);
    this.streak = new Int32Array(banks);
    this.skip = new Int32Array(banks);
  }

  /** Forgets every entry and streak (the warm-up's synthetic records end so). */
  reset(): void {
    this.bankOf.fill(-1);
    this.streak.fill(0);
    this.skip.fill(0);
    this.entry = -1;
    this.hits = 0;
    this.misses = 0;
  }

  /**
   * The end of the run copied to `out` at `p` from the entry of `pid`, when
   * that entry's key is these bytes' (`bits`: the flag bits the run reads);
   * -1 when the run must be rendered, and then kept with keep(), which fills
   * the entry this call looked at.
   */
  copy(
    pid: number,
    run: Int32Array,
    bits: number,
    bytes: Uint8Array,
    off: Int32Array,
    len: Int32Array,
    out: Uint8Array,
    p: number,
  ): number {
    const bank = run[0]!;
    if (this.skip[bank]! > 0) {
      this.skip[bank]!--;
      this.entry = -1;
      return -1;
    }
    const e = bank * ENTRIES + (pid & (ENTRIES - 1));
    if (!this.same(e, run, bits, bytes, off, len)) {
      this.misses++;
      this.entry = e;
      this.bits = bits;
      // After a pass, two misses in a row pass over again: the first keeps a key for the second.
      if (++this.streak[bank]! >= STREAK && this.passOver) {
        this.streak[bank] = STREAK - 2;
        this.skip[bank] = SKIP;
      }
      return -1;
    }
    this.hits++;
    this.streak[bank] = 0;
    const n = this.outLen[e]!;
    copyBytes.call(this.outs[e]!, out, p, 0, n);
    return p + n;
  }

  private same(e: number, run: Int32Array, bits: number, bytes: Uint8Array, off: Int32Array, len: Int32Array): boolean {
    if (this.bankOf[e] !== run[0] || this.bitsOf[e] !== bits) return false;
    const words = this.recWords[e]!;
    let r = 2;
    for (const last = 2 + 2 * run[1]!; r < last; r += 2) {
      const end = run[r + 1]!;
      for (let i = run[r]!; i < end; i += 4)
        if ((bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) !== words[i >> 2])
          return false;
    }
    const rec = this.recs[e]!;
    const strings = run[r++]!;
    for (let j = 0; j < strings; j++) {
      const x = run[r + j]!;
      const n = len[x]!;
      const at = e * MAX_STRINGS + j;
      if (n !== this.strLen[at]) return false;
      const s = off[x]!;
      const t = this.strOff[at]!;
      for (let i = 0; i < n; i++) if (bytes[s + i] !== rec[t + i]) return false;
    }
    return true;
  }

  /** Keeps the run rendered at out[from, to), keyed by these bytes, in the entry the last copy() missed. */
  keep(
    run: Int32Array,
    bytes: Uint8Array,
    off: Int32Array,
    len: Int32Array,
    out: Uint8Array,
    from: number,
    to: number,
  ): void {
    const e = this.entry;
    if (e < 0) return;
    this.entry = -1;
    this.bankOf[e] = -1;
    const strAt = 2 + 2 * run[1]!;
    const strings = run[strAt]!;
    // The ranges are sorted: the last one ends furthest (none: run[1], 0).
    let need = run[strAt - 1]!;
    for (let j = 0; j < strings; j++) {
      const x = run[strAt + 1 + j]!;
      need = Math.max(need, off[x]! + len[x]!);
    }
    if (need > RECORD_CAP || need > bytes.length || to - from > OUT_CAP || strings > MAX_STRINGS) return;
    // Rounded up in integer arithmetic: a division's fraction was a deoptimization in every storm.
    if (this.recs[e]!.length < need) {
      this.recs[e] = new Uint8Array(grains(need));
      this.recWords[e] = new Int32Array(this.recs[e]!.buffer);
    }
    if (this.outs[e]!.length < to - from) this.outs[e] = new Uint8Array(grains(to - from));
    // Native copies: the record up to the last byte the run reads, and the rendering.
    copyBytes.call(bytes, this.recs[e]!, 0, 0, need);
    for (let j = 0; j < strings; j++) {
      const x = run[strAt + 1 + j]!;
      this.strOff[e * MAX_STRINGS + j] = off[x]!;
      this.strLen[e * MAX_STRINGS + j] = len[x]!;
    }
    copyBytes.call(out, this.outs[e]!, 0, from, to);
    this.outLen[e] = to - from;
    this.bitsOf[e] = this.bits;
    this.bankOf[e] = run[0]!;
  }
}
