/** What every transport's reader offers the agent. */

/** Called synchronously during consume(); `data` is a view into the ring, valid only until it returns. */
export type SampleHandler = (cpu: number, data: Uint8Array) => void;

export interface EventSource {
  /** Runs the handler for every record waiting now, without blocking. */
  consume(): void;
  /** Records the kernel dropped because the buffer was full, as user space learns of them. */
  lost(): number;
  lostByCpu(): number[];
  /** Records the reader could not even frame (not events: the container around them). */
  badRecords(): number;
  close(): void;
}
