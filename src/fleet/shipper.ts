/**
 * The fleet sink: rows from the run loop into a ClickHouse table, at least
 * once, never blocking the loop that drains the kernel's buffers.
 *
 * push() only appends bytes; tick() (after each drain) seals a batch that is
 * due. Sealed batches are gzip'd on the thread pool, in order, then:
 *  - with --spool: written to the spool (fsync'd) before any attempt to send,
 *    so the spool is a write-ahead queue and the one order there is; the
 *    sender posts its oldest batch and deletes it once the server said 200.
 *    A batch that failed stays first: replay is in order. A crash, a server
 *    away for hours or a restart of the agent lose nothing below the cap.
 *  - without: a memory queue of memoryCap bytes.
 * Either way, past the cap the oldest batches are dropped and counted
 * (sink_dropped: the summary, the metrics, an in-band record).
 *
 * Retries back off from 0.5 s to 30 s. The first failure of a streak is one
 * warning line (a reminder at most every minute), recovery one info line.
 *
 * A batch whose data the server refuses (a row it cannot parse) would block
 * every later one forever: after REJECT_LIMIT such refusals the batch after it
 * is tried. If that one goes in, the refused batch is dropped and counted; if
 * it is refused too, the trouble is the server's (a table changed under us),
 * not one batch's, and the queue keeps its order and waits.
 */
import { log } from "../log.ts";
import { type Batch, Batcher } from "./batcher.ts";
import type { ClickHouseClient } from "./client.ts";
import { eventsKeepingRaw } from "./ddl.ts";
import { Spool } from "./spool.ts";

export interface FleetOptions {
  client: ClickHouseClient;
  run: string;
  batchRows: number;
  batchBytes: number;
  flushMs: number;
  spoolDir?: string;
  spoolCap: number;
  /** Without a spool: compressed bytes held in memory before the oldest are dropped. */
  memoryCap: number;
  /** Rows were dropped: the caller writes the in-band record (and pushes it here too). */
  onDropped: (rows: number, batches: number) => void;
  gzipLevel?: number;
}

export interface FleetCounts {
  /** Rows the server accepted. */
  sentRows: number;
  sentBatches: number;
  /** Rows dropped past a cap. */
  dropped: number;
  /** Rows waiting: spooled or queued, not yet accepted. */
  waitingRows: number;
  spoolBytes: number;
  failures: number;
}

interface Queued {
  gz: Buffer;
  rows: number;
}

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const REMIND_MS = 60_000;
/** Refusals of the oldest batch's data before the batch after it is tried past it. */
export const REJECT_LIMIT = 3;

/**
 * node:zlib is loaded at the first batch: loading it costs 1-5 ms of every
 * agent's start, and only an agent with a sink ever compresses.
 */
async function gzipAsync(body: Buffer, level: number): Promise<Buffer> {
  const { gzip } = await import("node:zlib");
  return new Promise((resolve, reject) => gzip(body, { level }, (e, out) => (e ? reject(e) : resolve(out))));
}

export class FleetSink {
  readonly batcher: Batcher;
  readonly spool: Spool | null;
  private readonly mem: Queued[] = [];
  private memBytes = 0;
  private memBusy: Queued | null = null;
  /** Batches sealed, not yet spooled or queued (being compressed). */
  private compressing: Promise<void> = Promise.resolve();
  private compressingRows = 0;
  private pumping: Promise<void> | null = null;
  private failing = false;
  private lastWarn = 0;
  private lastDropWarn: number | null = null;
  private backoff = BACKOFF_MIN_MS;
  private wakeSleep: (() => void) | null = null;
  /** The oldest batch the server refused the data of (a spool entry or a queued batch), how often in a row, and why. */
  private refused: { head: unknown; times: number; why: string } | null = null;
  private closing = false;
  /** Batches the spool refused (append failed). */
  private storeFailures = 0;
  private readonly abort = new AbortController();
  readonly counts = { sentRows: 0, sentBatches: 0, dropped: 0, failures: 0 };

  constructor(private readonly o: FleetOptions) {
    this.batcher = new Batcher({
      run: o.run,
      maxRows: o.batchRows,
      maxBytes: o.batchBytes,
      maxAgeMs: o.flushMs,
      rawFor: eventsKeepingRaw(),
    });
    this.spool = o.spoolDir !== undefined ? new Spool(o.spoolDir, o.spoolCap, (r, b) => this.dropped(r, b)) : null;
    if (this.spool !== null && this.spool.batches > 0) {
      log.info(`clickhouse sink: ${this.spool.batches} batches (${this.spool.rows} rows) spooled earlier, replaying`);
      this.kick();
    }
  }

  /** One rendered NDJSON line; bytes are copied, buf may be reused after the call. */
  push(buf: Buffer, start: number, end: number): void {
    this.batcher.push(buf, start, end);
  }

  pushString(line: string): void {
    this.batcher.pushString(line);
  }

  /** After each drain: seals a batch that is due. Cheap when none is. */
  tick(): void {
    if (this.batcher.due()) this.sealBatch();
  }

  /** How long the run loop may wait before the next tick() seals the open batch on time (Infinity: no rows). */
  msUntilDue(): number {
    return this.batcher.msUntilDue();
  }

  counters(): FleetCounts {
    const spooled = this.spool?.rows ?? this.mem.reduce((n, q) => n + q.rows, 0);
    return {
      ...this.counts,
      waitingRows: spooled + this.compressingRows + this.batcher.pendingRows,
      spoolBytes: this.spool?.bytes ?? this.memBytes,
    };
  }

  private sealBatch(): void {
    const b = this.batcher.seal();
    if (b === null) return;
    this.compressingRows += b.rows;
    // One after another: the queue's order is the rows' order.
    this.compressing = this.compressing.then(() => this.store(b));
  }

  private async store(b: Batch): Promise<void> {
    try {
      const gz = await gzipAsync(b.body, this.o.gzipLevel ?? 1);
      if (this.spool !== null) await this.spool.append(gz, b.rows);
      else this.enqueue({ gz, rows: b.rows });
    } catch (e) {
      // A spool that cannot be written (disk full, EIO, its directory gone): the batch is gone, counted and said so.
      this.storeFailures++;
      this.dropped(b.rows, 1, `cannot spool a batch (${(e as Error).message})`);
    } finally {
      this.compressingRows -= b.rows;
    }
    this.kick();
  }

  private enqueue(q: Queued): void {
    this.mem.push(q);
    this.memBytes += q.gz.length;
    let rows = 0;
    let batches = 0;
    while (this.memBytes > this.o.memoryCap && this.mem.length > 1) {
      const i = this.mem[0] === this.memBusy ? 1 : 0;
      if (i >= this.mem.length - 1) break;
      const [d] = this.mem.splice(i, 1);
      this.memBytes -= d!.gz.length;
      rows += d!.rows;
      batches++;
    }
    if (batches > 0) this.dropped(rows, batches);
  }

  /** Counted and recorded in-band every time; a warning at most every REMIND_MS. */
  private dropped(rows: number, batches: number, why?: string): void {
    this.counts.dropped += rows;
    const now = performance.now();
    if (this.lastDropWarn === null || now - this.lastDropWarn >= REMIND_MS) {
      this.lastDropWarn = now;
      const what =
        why ?? `${this.spool !== null ? "spool" : "memory queue"} full, dropped the oldest ${batches} batches`;
      log.warn(`clickhouse sink: ${what} (${rows} rows; sink_dropped=${this.counts.dropped} so far)`);
    }
    this.o.onDropped(rows, batches);
  }

  private kick(): void {
    if (this.pumping !== null) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
    });
  }

  /** Sends the oldest waiting batch until none is left (or the sink is closing and gives up). */
  private async pump(): Promise<void> {
    for (;;) {
      let rows: number;
      let body: Buffer;
      let settle: (ok: boolean) => Promise<void>;
      /** The oldest batch, and how to drop it: what is sent is the one after it when the oldest keeps being refused. */
      let head: unknown;
      let dropHead: () => Promise<number>;
      const past = this.refused !== null && this.refused.times >= REJECT_LIMIT ? 1 : 0;
      let skip = 0;
      if (this.spool !== null) {
        const spool = this.spool;
        const oldest = spool.oldest();
        if (oldest === null) return;
        head = oldest;
        dropHead = async () => ((await spool.done(oldest)) ? oldest.rows : 0);
        let e = spool.take(past);
        if (e === null) e = spool.take(0)!;
        else skip = past;
        rows = e.rows;
        try {
          body = await spool.read(e);
        } catch (err) {
          await spool.done(e);
          this.dropped(e.rows, 1, `cannot read spooled ${e.name} (${(err as Error).message}), skipped it`);
          continue;
        }
        const taken = e;
        settle = async (ok) => {
          if (ok) await spool.done(taken);
          else spool.release();
        };
      } else {
        const oldest = this.mem[0];
        if (oldest === undefined) return;
        head = oldest;
        dropHead = async () => {
          const i = this.mem.indexOf(oldest);
          if (i < 0) return 0; // the cap took it already, and counted it
          this.mem.splice(i, 1);
          this.memBytes -= oldest.gz.length;
          return oldest.rows;
        };
        const next = past === 1 ? this.mem[1] : undefined;
        const q = next ?? oldest;
        if (next !== undefined) skip = 1;
        this.memBusy = q;
        rows = q.rows;
        body = q.gz;
        settle = async (ok) => {
          this.memBusy = null;
          if (!ok) return;
          const i = this.mem.indexOf(q);
          if (i >= 0) {
            this.mem.splice(i, 1);
            this.memBytes -= q.gz.length;
          }
        };
      }
      const r = await this.o.client.insert(body, this.abort.signal);
      await settle(r.ok);
      if (r.ok) {
        if (skip === 1 && this.refused !== null) {
          // The one after it went in: the oldest's own data is what the server refuses.
          const why = this.refused.why;
          this.refused = null;
          const lost = await dropHead();
          if (lost > 0)
            this.dropped(
              lost,
              1,
              `the server refuses one batch's data (${why}) and takes the next: dropped that batch`,
            );
        } else if (skip === 0) this.refused = null;
        this.counts.sentRows += rows;
        this.counts.sentBatches++;
        this.backoff = BACKOFF_MIN_MS;
        if (this.failing) {
          this.failing = false;
          log.info(`clickhouse sink: ${this.o.client.target.display} takes inserts again; replaying what waited`);
        }
        continue;
      }
      if (skip === 1) {
        // The next one is refused too: the server's trouble, not one batch's. The oldest goes first again.
        this.refused = null;
      } else if (r.rejected) {
        const seen = this.refused?.head === head ? this.refused : null;
        this.refused = { head, times: (seen?.times ?? 0) + 1, why: r.why };
      } else this.refused = null;
      this.counts.failures++;
      if (this.closing) return;
      this.warnFailure(r.why);
      await this.sleep(this.backoff);
      this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
      if (this.closing) return;
    }
  }

  private warnFailure(why: string): void {
    const now = performance.now();
    if (this.failing && now - this.lastWarn < REMIND_MS) return;
    const first = !this.failing;
    this.failing = true;
    this.lastWarn = now;
    const c = this.counters();
    const where = this.spool !== null ? `spooling to ${this.spool.dir}` : "queueing in memory (no --spool)";
    log.warn(
      `clickhouse sink: ${first ? "cannot insert" : "still cannot insert"} into ${this.o.client.target.display}: ${why}; ${where} (${c.waitingRows} rows waiting), retrying`,
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeSleep = null;
        resolve();
      }, ms);
      this.wakeSleep = () => {
        clearTimeout(t);
        this.wakeSleep = null;
        resolve();
      };
    });
  }

  /**
   * The end of the run: seals the last batch, spools it, and sends what waits
   * for at most graceMs; what is left stays in the spool for the next start
   * (without a spool it is dropped and counted). Returns the rows left.
   */
  async close(graceMs: number): Promise<number> {
    // Spooling the last batch may drop old ones, and their in-band record is a row too: seal until none is left
    // (each round that adds a record deleted a batch, and the spool holds finitely many). A spool that
    // refuses this round's batch (counted, rows and all) adds a record without deleting one: then that
    // record alone is left unsent (it is on stdout already), or each round would add another.
    // A batch the last drain sealed may still be compressing: wait for it first. Its failure is not this
    // loop's: the rows pushed after it are sealed and stored (or counted) like any others.
    for (;;) {
      await this.compressing;
      await this.spool?.settled();
      if (this.batcher.pendingRows === 0) break;
      const failuresBefore = this.storeFailures;
      this.sealBatch();
      await this.compressing;
      await this.spool?.settled();
      if (this.storeFailures !== failuresBefore) {
        this.batcher.seal();
        break;
      }
    }
    const deadline = performance.now() + graceMs;
    // A sender asleep in its backoff tries once more now.
    this.wakeSleep?.();
    this.kick();
    while (this.pumping !== null && performance.now() < deadline && this.counters().waitingRows > 0) {
      if (this.failing && this.wakeSleep !== null) break; // failed again: the server is still away
      await Bun.sleep(10);
    }
    this.closing = true;
    this.abort.abort();
    this.wakeSleep?.();
    await this.pumping;
    const left = this.counters().waitingRows;
    if (this.spool === null && left > 0) {
      const batches = this.mem.length;
      this.mem.length = 0;
      this.memBytes = 0;
      this.dropped(left, batches, `${left} rows not delivered at exit (no --spool to keep them)`);
      this.batcher.seal(); // that record has nowhere to go but stdout
      return left;
    }
    if (left > 0) {
      log.warn(`clickhouse sink: ${left} rows left in ${this.spool!.dir}; the next start sends them`);
    }
    this.spool?.close();
    return left;
  }
}
