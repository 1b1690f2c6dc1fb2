/**
 * The agent's warm-up after attach: synthetic records through the run's own
 * line path (Session.warmUp), in steps, so the JIT has compiled the per-event
 * path before the first burst; and the memory the start-up and the compilers
 * leave behind handed back as it goes.
 */
import type { LineOutput, Session } from "../agent/session.ts";
import { loadLogFormatter, log } from "../log.ts";
import type { FileSink } from "../output/file.ts";
import type { LineSink } from "../output/sink.ts";
import { dropCodePages } from "./code-pages.ts";
import { jitIdle } from "./jit-idle.ts";
import { warmUpSink } from "./warm-up-sink.ts";

/**
 * Synthetic records the per-event path runs before the first drain (see
 * Session.warmUp): enough for the JIT to finish optimizing the generated
 * renderers (lines.gen.ts) before a storm does. With 20,000 their last tier
 * was compiled during the first storms, which cost 3-6 µs per event more
 * there; 100,000 take 1.2-1.4 s and 1.3-1.5 s of CPU once, after `attached` (0.8 s
 * more than before each step handed the executable's code pages back: the faults).
 */
const WARM_UP_RECORDS = 100_000;
/**
 * Records per warm-up step, with drains of the real buffers after each (120-140 ms apart here). Steps of
 * 5,000 (the code pages handed back twice as often) took the peak RSS 2-4 MiB lower, but left the JIT
 * compiling in the ring buffer's second storm (0.5-0.8 µs per event on its compiler thread, against 0.2).
 */
const WARM_UP_CHUNK = 10_000;
/** Drains after each warm-up step: 80 in all, past the JIT's first tier for what runs once a drain. */
const WARM_UP_DRAINS = 8;
/**
 * Records per warm-up call, each followed by a drain of the real buffers: a step's 10,000 at once ran
 * 100-200 ms between drains, longer with its code faulting back from disk or the CPUs busy, and a
 * 128 KiB buffer under an exec loop overflowed (13-34 lost in 2 of 4 starts with two CPU hogs running).
 */
const WARM_UP_PART = 1_000;
/** The longest the warm-up waits for the JIT's last compiles before handing their code back. */
const JIT_IDLE_MAX_MS = 2000;

export interface WarmUpRun {
  session: Session;
  /** The run's sink: a counterpart of its class takes the warm-up's lines (warm-up-sink.ts). */
  sink: LineSink | FileSink;
  outputLimit: number;
  /** The run's own line handler, so the call sites the warm-up compiles are the run's. */
  onLine: LineOutput["onLine"];
  /** Runs `part` with onLine writing to `to`, with no fleet and no --count, and puts the run's back. */
  divert: (to: LineSink | FileSink, part: () => void) => void;
  /** The run is stopping (a signal, a failure): the warm-up ends at its next part. */
  stopping: () => boolean;
}

/**
 * In steps, each followed by drains and a turn of the event loop: the warm-up takes 1.3-1.5 s of CPU,
 * which a busy host's events would otherwise wait out in the buffers, and signals (SIGTERM, SIGHUP's
 * reopen) behind it.
 */
export async function warmUpSteps(run: WarmUpRun): Promise<void> {
  const { session } = run;
  const warm = warmUpSink(run.sink, run.outputLimit);
  const warmStart = performance.now();
  const warmCpu = process.cpuUsage();
  try {
    loadLogFormatter();
    await dropStartUpCode();
    for (let done = 0; done < WARM_UP_RECORDS && !run.stopping(); done += WARM_UP_PART) {
      // The executable's pages go back to the kernel before each step: first the start-up's (the
      // runtime's, the CLI's, libbpf's load), then what the step before ran and this one does not
      // (the JIT's compilers, mostly), so the warm-up, the agent's peak, never holds them all. The
      // kernel's work (~100 ms) goes in pieces, with a drain after each.
      if (done % WARM_UP_CHUNK === 0) releaseCodePages(() => session.drain());
      run.divert(warm.sink, () => {
        try {
          session.warmUp(WARM_UP_PART, run.onLine, warm.afterPass);
        } finally {
          warm.sink.abandon();
        }
      });
      session.drain();
      if ((done + WARM_UP_PART) % WARM_UP_CHUNK === 0) {
        // Several drains, not one: what runs once a drain (the reads, the loss check, the flush, the
        // drain period) reaches the JIT's first tier after about 33 calls, which at the timer's 10 a
        // second was in the second storm (15-20 small compiles, 2-4 ms of compiling there).
        for (let i = 1; i < WARM_UP_DRAINS; i++) session.drain();
        // A full collection after each step (about 4 ms): the JIT's compilations and the step's
        // garbage are freed as the warm-up goes, so the allocator reuses their memory for the next
        // step; without it the warm-up's anonymous memory grew by 2-5 MiB a step, 17 -> 50 MiB,
        // the agent's peak RSS, and fell back only seconds later (measured: peak anonymous 50 -> 34
        // MiB, RSS after attach -3 to -5 MiB, VmHWM over two storms -7 MiB; storms compile no more).
        Bun.gc(true);
      }
      // A turn of the event loop after each part: a signal (SIGTERM, SIGHUP's reopen) waits 10-50 ms,
      // not a whole step (a logrotate's SIGHUP during the warm-up left lines in the old file).
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    warm.end();
  }
  session.endWarmUp();
  if (!run.stopping()) {
    // And once more after the last step, its compiles done: an idle agent keeps only what it runs
    // idle (RSS after the warm-up 31.5 MiB against 35.5 with NDJSON, 39.0 against 44.2 with the
    // ring buffer), and the first burst faults back what the per-event path runs, from disk (0.3-0.6
    // µs per event of a first 20,000-exec storm). The collection after it is one the idle agent
    // made a second later (reading smaps allocates), 4-5 ms of CPU in the first idle second.
    await jitIdle(JIT_IDLE_MAX_MS);
    if (!run.stopping()) {
      releaseCodePages(() => session.drain());
      Bun.gc(true);
    }
  }
  const cpu = process.cpuUsage(warmCpu);
  log.debug(
    `warm-up: ${WARM_UP_RECORDS} synthetic records in ${(performance.now() - warmStart).toFixed(0)} ms ` +
      `(${((cpu.user + cpu.system) / 1000).toFixed(0)} ms of CPU, ${(cpu.system / 1000).toFixed(0)} in the kernel)`,
  );
}

/**
 * Frees what the JIT made of the start-up (the CLI, the loader, the kernel BTF's cut), which never
 * runs again, before the warm-up compiles the per-event path: Bun.shrink() drops every compiled
 * function and bytecode block, collects, and hands the allocator's free memory back, once no JavaScript
 * is on the stack (hence the turn of the event loop). Nothing of the per-event path is lost: none of it
 * has run yet. Measured: about 2 MiB less anonymous memory after the warm-up (RSS after attach 37.1 vs
 * 38.7 MiB in an interleaved run), the peak over storms unchanged.
 */
async function dropStartUpCode(): Promise<void> {
  const t0 = performance.now();
  Bun.shrink();
  await new Promise((r) => setImmediate(r));
  log.debug(`start-up code dropped in ${(performance.now() - t0).toFixed(1)} ms`);
}

function releaseCodePages(between: () => void): void {
  const kib = dropCodePages(between);
  log.debug(`${(kib / 1024).toFixed(1)} MiB of the executable's pages handed back`);
}
