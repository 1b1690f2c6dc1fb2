/**
 * The adaptive drain period: keep the fullest buffer under a quarter full
 * between drains, so a burst four times the current rate still fits. Shorten
 * the period in proportion (down to 5 ms), and relax back to --interval once
 * it calms down. A transport that can wake the agent when a buffer is half
 * full (perf: SIGIO at its watermark) lets a host with nothing to report be
 * drained less often still, up to IDLE_DRAIN_MS: a burst no longer waits for
 * the timer to be seen.
 */

/** A floor, so that a flood cannot turn the drain timer into a busy loop. */
export const MIN_DRAIN_MS = 5;
/** Above this fill the period shrinks... */
export const SHRINK_ABOVE = 0.25;
/** ...and below this one it doubles back towards --interval. */
export const RELAX_BELOW = 0.1;
/**
 * The longest period while drains find nothing, when a full buffer can wake
 * the agent: each timer tick costs the Bun runtime about 0.2 ms of CPU (its
 * loop and its allocator's purge thread), 2 ms/s at 100 ms.
 */
export const IDLE_DRAIN_MS = 1000;

/**
 * The next drain period (ms), given the current one, the largest share (0..1)
 * of one buffer the last drain read, the configured --interval, and how long
 * a drain that found nothing may be followed by silence (idleMs: --interval
 * unless a full buffer wakes the agent by itself).
 */
export function nextDrainPeriod(currentMs: number, fill: number, intervalMs: number, idleMs = intervalMs): number {
  // Once anything arrives, an idle period no longer applies.
  const active = Math.min(currentMs, intervalMs);
  if (fill > SHRINK_ABOVE) return Math.max(MIN_DRAIN_MS, (active * SHRINK_ABOVE) / fill);
  if (fill === 0) return Math.min(Math.max(idleMs, intervalMs), currentMs * 2);
  if (fill < RELAX_BELOW) return Math.min(intervalMs, currentMs * 2);
  return active;
}

/**
 * How long the next drain may wait while output is queued for a reader (a
 * pipe or socket that was full). A reader that took bytes gets the next ones
 * soon, so a storm goes out at the reader's pace and not one pipeful per
 * --interval; one that took nothing is asked half as often each time, back to
 * --interval, so a stalled reader does not keep the agent awake.
 */
export function nextBacklogWait(currentMs: number, progressed: boolean, intervalMs: number): number {
  if (progressed) return Math.min(MIN_DRAIN_MS, intervalMs);
  return Math.min(intervalMs, Math.max(MIN_DRAIN_MS, currentMs * 2));
}
