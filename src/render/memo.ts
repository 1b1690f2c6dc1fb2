/**
 * The last renderings of a run of fields that depend on the process alone
 * (its ids, names, exec ids, pid_tree, exe), kept by pid: a storm's records
 * from one process repeat them, and comparing the bytes they come from costs
 * a fraction of writing them again (about twenty integers and four strings).
 * The key is every byte the run is rendered from, so a hit writes exactly what
 * rendering would: a stale line cannot happen by construction, not by
 * invalidation.
 *
 * A run is described by an Int32Array that scripts/render-gen.ts generates:
 * [id, ranges, start0, end0, ..., strings, index0, ...]: the record's byte
 * ranges it reads (whole 4-byte words) and the string spans it writes. The id
 * is in the key, so two runs never share an entry's rendering.
 */

/** Direct-mapped by pid: the few processes of one drain rarely collide. */
const ENTRIES = 16;
/** Key bytes at most (id, flag bits, ranges, strings with their lengths); longer keys are not kept. */
const KEY_CAP = 2048;
/** Rendered bytes at most. */
const OUT_CAP = 4096;

export class RunMemo {
  private readonly keys = Array.from({ length: ENTRIES }, () => new Uint8Array(KEY_CAP));
  private readonly words = this.keys.map((k) => new Int32Array(k.buffer));
  /** Bytes of each entry's key; -1: empty. */
  private readonly keyLen = new Int32Array(ENTRIES).fill(-1);
  private readonly outs = Array.from({ length: ENTRIES }, () => new Uint8Array(OUT_CAP));
  /** Each entry's rendering, a view of its `outs` buffer: a hit is one native copy. */
  private readonly views: Uint8Array[] = Array.from({ length: ENTRIES }, () => new Uint8Array(0));
  /** For tests and the benchmark. */
  hits = 0;
  misses = 0;

  /**
   * The end of the run copied to `out` at `p` from the entry of `pid`, when
   * that entry's key is these bytes' (`bits`: the flag bits the run reads);
   * -1 when the run must be rendered, and then kept with keep().
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
    const e = pid & (ENTRIES - 1);
    if (!this.same(e, run, bits, bytes, off, len)) {
      this.misses++;
      return -1;
    }
    this.hits++;
    const src = this.views[e]!;
    out.set(src, p);
    return p + src.length;
  }

  private same(e: number, run: Int32Array, bits: number, bytes: Uint8Array, off: Int32Array, len: Int32Array): boolean {
    const n = this.keyLen[e]!;
    if (n < 0) return false;
    const words = this.words[e]!;
    if (words[0] !== run[0] || words[1] !== bits) return false;
    let k = 8;
    const ranges = run[1]!;
    let r = 2;
    for (const last = 2 + 2 * ranges; r < last; r += 2) {
      const end = run[r + 1]!;
      for (let i = run[r]!; i < end; i += 4) {
        if ((bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) !== words[k >> 2])
          return false;
        k += 4;
      }
    }
    const key = this.keys[e]!;
    const strings = run[r++]!;
    for (const last = r + strings; r < last; r++) {
      const s = off[run[r]!]!;
      const m = len[run[r]!]!;
      if (key[k] !== (m & 0xff) || key[k + 1] !== m >>> 8) return false;
      k += 2;
      for (let i = 0; i < m; i++) if (bytes[s + i] !== key[k + i]) return false;
      k += m;
    }
    return k === n;
  }

  /** Keeps the run rendered at out[from, to) as the entry of `pid`, keyed by these bytes. */
  keep(
    pid: number,
    run: Int32Array,
    bits: number,
    bytes: Uint8Array,
    off: Int32Array,
    len: Int32Array,
    out: Uint8Array,
    from: number,
    to: number,
  ): void {
    const e = pid & (ENTRIES - 1);
    this.keyLen[e] = -1;
    const ranges = run[1]!;
    const strAt = 2 + 2 * ranges;
    let need = 8;
    for (let r = 2; r < strAt; r += 2) need += run[r + 1]! - run[r]!;
    for (let r = strAt + 1; r < strAt + 1 + run[strAt]!; r++) need += 2 + len[run[r]!]!;
    if (need > KEY_CAP || to - from > OUT_CAP) return;
    const key = this.keys[e]!;
    const words = this.words[e]!;
    words[0] = run[0]!;
    words[1] = bits;
    let k = 8;
    for (let r = 2; r < strAt; r += 2) for (let i = run[r]!; i < run[r + 1]!; i++) key[k++] = bytes[i]!;
    for (let r = strAt + 1; r < strAt + 1 + run[strAt]!; r++) {
      const s = off[run[r]!]!;
      const m = len[run[r]!]!;
      key[k++] = m & 0xff;
      key[k++] = m >>> 8;
      for (let i = 0; i < m; i++) key[k++] = bytes[s + i]!;
    }
    const dst = this.outs[e]!;
    for (let i = from; i < to; i++) dst[i - from] = out[i]!;
    this.views[e] = dst.subarray(0, to - from);
    this.keyLen[e] = k;
  }
}
