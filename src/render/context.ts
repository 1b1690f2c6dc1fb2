/**
 * The contract between LineRenderer (fast.ts) and the renderers that
 * scripts/render-gen.ts generates into lines.gen.ts: one function per record
 * type and output, which writes a record's line from its bytes, and what it
 * asks of the renderer that calls it.
 */
import type { RunMemo } from "./memo.ts";

/** What a generated renderer asks of its LineRenderer. */
export interface RenderContext {
  /** The host name as a JSON string, quotes included. */
  readonly hostJson: Uint8Array;
  /** Whether the last args() stopped at --max-args. */
  readonly argsCut: boolean;
  /** The header's time as rfc3339Nano, quoted, at `p`: the end, or BAIL. */
  time(bytes: Uint8Array, out: Uint8Array, p: number): number;
  /** The argv area as a JSON array at `p`: the end, or BAIL. */
  args(bytes: Uint8Array, s: number, n: number, out: Uint8Array, p: number): number;
  /** The process's runs of fields, as last rendered (memo.ts). */
  readonly memo: RunMemo;
}

/**
 * A record's NDJSON line (or table summary) written at `p` of `out` (`d`: a
 * DataView of `out`'s bytes): the end, or BAIL when the record needs the
 * general renderer. `off`/`len` are checkRecord()'s string spans.
 */
export type Generated = (
  bytes: Uint8Array,
  off: Int32Array,
  len: Int32Array,
  out: Uint8Array,
  d: DataView,
  p: number,
  ctx: RenderContext,
) => number;
