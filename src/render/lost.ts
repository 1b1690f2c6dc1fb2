/**
 * The in-band record for events that went missing: written into the event
 * stream where the agent noticed the loss, so a consumer of the stream sees
 * the gap without reading stderr. One function per format, kept apart from
 * the event renderers so the record's schema can change in one place.
 */
import { rfc3339Nano } from "./event.ts";

export interface LostRecord {
  /** The CPU whose events were lost (for the ring buffer: where the reservation failed). */
  cpu: number;
  /** How many events, since the previous lost record for this CPU. */
  lost: number;
  /** Wall-clock time the agent noticed, in ns since the epoch. */
  wallNs: bigint;
}

/** `{"event":"lost","time":"<RFC 3339>","cpu":C,"lost":N}` */
export function lostJson(r: LostRecord): string {
  return JSON.stringify({ event: "lost", time: rfc3339Nano(r.wallNs), cpu: r.cpu, lost: r.lost });
}

/** A table row of TYPE LOST, in the columns of TABLE_HEADER (8, 8, 8, 16, then free text). */
export function lostRow(r: LostRecord): string {
  return `${"LOST".padEnd(8)} ${"-".padEnd(8)} ${"-".padEnd(8)} ${"-".padEnd(16)} cpu=${r.cpu} lost=${r.lost} time=${rfc3339Nano(r.wallNs)}`;
}
