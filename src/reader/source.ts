/** What every transport's reader offers the agent. */
export type { RecordHandler } from "./framing.ts";

/**
 * Reading per-CPU buffers in turns: each gives at most `bytes` a turn, then
 * `after` learns which CPUs still have records of this call waiting (indexed
 * by CPU number). After the last turn none has; `after` runs at least once.
 */
export interface Rounds {
  bytes: number;
  after: (pending: readonly boolean[]) => void;
}

export interface EventSource {
  /**
   * Hands every record waiting now to the reader's handler, without blocking
   * or entering C. Returns the largest share (0..1) of one buffer's data area
   * that this call handed out: how full the fullest buffer got since the last
   * call, which sets the drain period. `rounds`: per-CPU buffers are read in
   * turns (a transport with one shared buffer reads it whole and ignores it).
   */
  consume(rounds?: Rounds): number;
  /** Records the kernel dropped because the buffer was full, as user space learns of them. */
  lost(): number;
  /** The same per CPU, indexed by CPU number; empty for a transport with one shared buffer. */
  lostByCpu(): number[];
  /** Records the reader could not even frame (not events: the container around them). */
  badRecords(): number;
  /**
   * Has the kernel send SIGIO when a buffer gets half full, where the
   * transport can (perf); false where it cannot (the ring buffer's map fd has
   * no such signal). The caller listens for SIGIO before calling this.
   */
  signalWhenHalfFull(): boolean;
  close(): void;
}
