/**
 * The adaptive drain period: keep the fullest buffer under a quarter full
 * between drains, so a burst four times the current rate still fits. Shorten
 * the period in proportion (down to 5 ms), and relax back to --interval once
 * it calms down. Quiet hosts keep the cheap period.
 */

/** A floor, so that a flood cannot turn the drain timer into a busy loop. */
export const MIN_DRAIN_MS = 5;
/** Above this fill the period shrinks... */
export const SHRINK_ABOVE = 0.25;
/** ...and below this one it doubles back towards --interval. */
export const RELAX_BELOW = 0.1;

/**
 * The next drain period (ms), given the current one, the largest share (0..1)
 * of one buffer the last drain read, and the configured --interval.
 */
export function nextDrainPeriod(currentMs: number, fill: number, intervalMs: number): number {
  if (fill > SHRINK_ABOVE) return Math.max(MIN_DRAIN_MS, (currentMs * SHRINK_ABOVE) / fill);
  if (fill < RELAX_BELOW) return Math.min(intervalMs, currentMs * 2);
  return currentMs;
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
