/**
 * The agent's stdout: bounded, non-blocking, and honest about what it wrote.
 *
 * Lines collect during a drain, as bytes (strings are encoded as they come,
 * rendered lines are copied), and go out in one write (a burst costs one
 * syscall, not one per line). A reader that does not keep up must never stall
 * the agent (the kernel buffers would overflow, signals would wait), so the
 * descriptor is written without blocking: EAGAIN leaves the rest queued for the
 * next drain. The queue is bounded; a line that does not fit is dropped and
 * counted, never silently. A reader that went away (`dual-slot | head`) is
 * PipeClosed, a normal stop; any other write error (ENOSPC, EIO, EBADF...) is
 * OutputError, which ends the run with exit status 1.
 */
import { fstatSync, writeSync, writevSync } from "node:fs";
import { HostError } from "../errors.ts";
import { fcntl, peerClosed } from "../ffi/libc.ts";
import { ByteBuf } from "./bytebuf.ts";

export class PipeClosed extends Error {
  override name = "PipeClosed";
}

/** The output (stdout, or --output's file) cannot be written at all: the run cannot report, so it stops. */
export class OutputError extends HostError {
  override name = "OutputError";
  constructor(
    /** The errno name (ENOSPC, EIO, ...), as node:fs reports it. */
    readonly code: string,
    detail: string,
    /** What was written: "stdout", or the file's path. */
    target = "stdout",
  ) {
    super(`cannot write to ${target}: ${code}${detail !== "" ? ` (${detail})` : ""}`);
  }
}

/** What a slow reader may have waiting for it before lines are dropped. */
export const DEFAULT_OUTPUT_LIMIT = 64 * 1024 * 1024;

/** At most this many buffers per writev(2) (IOV_MAX on Linux). */
const IOV_MAX = 1024;

const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000; // the same on x86_64 and arm64
const F_SETPIPE_SZ = 1031;
/**
 * A pipe's default 64 KiB holds about 170 lines: one drain's write could not
 * carry a storm. 1 MiB is the default /proc/sys/fs/pipe-max-size.
 */
const PIPE_BYTES = 1024 * 1024;

/** Errors that mean the reader is gone rather than the output broken. */
const READER_GONE = new Set(["EPIPE", "ECONNRESET"]);

/** One drain's lines, encoded once; `ends[i]` is the byte offset just past line i's newline. */
interface Chunk {
  buf: Buffer;
  /** Bytes of `buf` already written. */
  off: number;
  ends: number[];
  counted: boolean[];
  /** First line not yet completely written. */
  next: number;
}

/**
 * One drain's lines as bytes, each ending in a newline: the renderers write
 * into it, strings are encoded into it, and it is sealed into one buffer.
 */
export class PendingLines extends ByteBuf {
  ends: number[] = [];
  counted: boolean[] = [];
  /** Written buffers kept for the next drains, largest last. */
  private readonly pool: Buffer[] = [];

  constructor() {
    super(64 * 1024);
  }

  /** Appends a line and its newline; returns its bytes. */
  pushString(line: string, bytes: number, counted: boolean): number {
    this.ensure(bytes);
    const start = this.len;
    this.len += this.buf.write(line, this.len, bytes - 1, "utf8");
    this.buf[this.len++] = 0x0a;
    this.ends.push(this.len);
    this.counted.push(counted);
    return this.len - start;
  }

  pushBytes(src: Buffer, start: number, end: number, counted: boolean): void {
    this.ensure(end - start + 1);
    this.len += src.copy(this.buf, this.len, start, end);
    this.buf[this.len++] = 0x0a;
    this.ends.push(this.len);
    this.counted.push(counted);
  }

  /**
   * The queued bytes, handed over (no copy). The queue goes on in a buffer
   * from the pool, or in a new one as large as this drain needed: a storm's
   * drains then write into the same few buffers, where growing one from 64 KiB
   * each drain cost a copy per doubling and a page fault per fresh 4 KiB (a
   * fifth of the agent's CPU in a connect storm). Give the bytes back with
   * recycle() once written.
   */
  take(): Buffer {
    const out = this.buf.subarray(0, this.len);
    const need = this.len;
    this.buf = this.pool.pop() ?? Buffer.allocUnsafeSlow(need >= CHUNK_BYTES ? CHUNK_ROOM : Math.max(64 * 1024, need));
    this.len = 0;
    this.ends = [];
    this.counted = [];
    return out;
  }

  /**
   * Takes over another queue's pooled buffers (the warm-up's, once it is
   * over): the first burst writes into buffers already touched instead of
   * allocating its own while the warm-up's wait for the GC.
   */
  adoptPool(other: PendingLines): void {
    for (const b of other.pool.splice(0)) this.recycle(b);
  }

  /**
   * A buffer take() handed out, written and no longer used, for the pool. One
   * that grew past SPARE_MAX is left to the GC: a burst's buffer is not kept
   * for the quiet.
   */
  recycle(taken: Buffer): void {
    const whole = Buffer.from(taken.buffer, taken.byteOffset, taken.buffer.byteLength - taken.byteOffset);
    if (whole.length > SPARE_MAX || whole.buffer === this.buf.buffer) return;
    if (this.pool.some((b) => b.buffer === whole.buffer)) return;
    this.pool.push(whole);
    this.pool.sort((a, b) => a.length - b.length);
    // The smallest go when it is full; no branch for it: one the warm-up never takes is an exit
    // from the optimized code each time a burst does (every storm with the ring buffer).
    this.pool.splice(0, Math.max(0, this.pool.length - POOL_MAX));
  }
}

/**
 * A storm's drain can render several MB of lines: they are sealed into chunks
 * of this size as they come (written together, one writev per flush), so the
 * same few buffers carry every drain, each small enough to stay in cache.
 * Small chunks waste little in the last, partly filled one: with 1 MiB chunks
 * an exec storm's first drains touched 8 MiB of fresh ones (2,000 page faults).
 */
export const CHUNK_BYTES = 256 * 1024;
/** A chunk's buffer: its bytes and room for the line that crosses it. */
const CHUNK_ROOM = CHUNK_BYTES + 64 * 1024;
/** The largest buffer recycle() keeps. */
const SPARE_MAX = 4 * 1024 * 1024;
/** Buffers kept for the next drains: about 5 MiB of chunks stay after a burst. */
const POOL_MAX = 16;

function errnoCode(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" ? code : "EIO";
}

export class LineSink {
  private readonly pending = new PendingLines();
  private chunks: Chunk[] = [];
  private queued = 0;
  /** The reader went away (EPIPE): what is left is nobody's loss. */
  private gone = false;
  /** A write failed for good: what is left counts as dropped. */
  private failed = false;
  private restoreFlags: number | null = null;
  /** What a write between flushes (sendEarly) threw: the next flush() throws it. */
  private deferred: unknown = null;
  /** Counted lines written completely. */
  written = 0;
  /** Counted lines that will never be written: over the bound, abandoned at close, or after a write error. */
  dropped = 0;

  constructor(
    private readonly fd = 1,
    readonly limit = DEFAULT_OUTPUT_LIMIT,
  ) {}

  /**
   * Makes a pipe or socket non-blocking (a regular file or a terminal is left
   * alone: neither stalls on a reader). The flag belongs to the open file
   * description, which a shell may share, so restore() puts it back.
   */
  nonBlocking(): this {
    let kind: "other" | "pipe" | "socket" = "other";
    try {
      const st = fstatSync(this.fd);
      kind = st.isFIFO() ? "pipe" : st.isSocket() ? "socket" : "other";
    } catch {
      return this; // a bad fd shows up as EBADF at the first write
    }
    if (kind === "other") return this;
    // A bigger pipe is only an optimization: on failure (a lower pipe-max-size) the default stays.
    if (kind === "pipe") fcntl(this.fd, F_SETPIPE_SZ, PIPE_BYTES);
    const flags = fcntl(this.fd, F_GETFL, 0);
    if (flags < 0 || (flags & O_NONBLOCK) !== 0) return this;
    if (fcntl(this.fd, F_SETFL, flags | O_NONBLOCK) === 0) this.restoreFlags = flags;
    return this;
  }

  /** Undoes nonBlocking(); safe to call twice. */
  restore(): void {
    if (this.restoreFlags === null) return;
    fcntl(this.fd, F_SETFL, this.restoreFlags);
    this.restoreFlags = null;
  }

  /** Takes over the buffers `other` keeps for its next drains (see PendingLines.adoptPool). */
  adoptBuffers(other: LineSink): void {
    this.pending.adoptPool(other.pending);
  }

  /** Bytes waiting to be written (pushed, not yet out). */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Nothing waits to be written. */
  get idle(): boolean {
    return this.queued === 0;
  }

  /**
   * Queues one line. `counted` lines are the records the summary counts
   * (events); banners and in-band notices are not. Returns false when the line
   * was dropped because it does not fit the bound (or the output is gone).
   */
  push(line: string, counted = true): boolean {
    const bytes = Buffer.byteLength(line) + 1;
    if (!this.admit(bytes, counted)) return false;
    this.queued += this.pending.pushString(line, bytes, counted);
    if (this.pending.len >= CHUNK_BYTES) this.seal();
    return true;
  }

  /** push() for a line already rendered as bytes: src[start, end), without its newline. */
  pushBytes(src: Buffer, start: number, end: number, counted = true): boolean {
    const bytes = end - start + 1;
    if (!this.admit(bytes, counted)) return false;
    this.pending.pushBytes(src, start, end, counted);
    this.queued += bytes;
    if (this.pending.len >= CHUNK_BYTES) {
      this.seal();
      this.sendEarly();
    }
    return true;
  }

  /**
   * A chunk full in the middle of a drain goes out at once: its bytes are
   * still in the CPU's caches for the kernel's copy, and its buffer comes back
   * to the pool for the next chunk, so a storm's drain fills the same one or
   * two buffers instead of a new, cold one per 256 KiB (the copy of each line
   * into them missed the caches). What the write throws waits for flush().
   */
  private sendEarly(): void {
    // No descriptor (the warm-up's sink where /dev/null cannot be opened): only ever emptied.
    if (this.fd < 0 || this.deferred !== null || this.gone || this.failed) return;
    try {
      this.send();
    } catch (e) {
      this.deferred = e;
    }
  }

  private admit(bytes: number, counted: boolean): boolean {
    if (this.gone) return false;
    if (this.failed || this.queued + bytes > this.limit) {
      if (counted) this.dropped++;
      return false;
    }
    return true;
  }

  /**
   * Writes what the descriptor takes now, without waiting. Throws PipeClosed
   * once when the reader is gone (with or without something to write), and
   * OutputError once when the output cannot be written; later calls do nothing.
   */
  flush(): void {
    if (this.deferred !== null) {
      const e = this.deferred;
      this.deferred = null;
      throw e;
    }
    if (this.gone || this.failed) return;
    this.seal();
    if (this.chunks.length === 0) {
      if (peerClosed(this.fd)) this.readerGone();
      return;
    }
    this.send();
  }

  /** Writes queued chunks until the descriptor takes no more (EAGAIN) or none is left. */
  private send(): void {
    while (this.chunks.length > 0) {
      let n: number;
      try {
        n = this.write();
      } catch (e) {
        const code = errnoCode(e);
        if (code === "EAGAIN" || code === "EWOULDBLOCK") return; // the reader is slow: next drain
        if (code === "EINTR") continue; // interrupted before writing anything; no loop without a signal
        if (READER_GONE.has(code)) this.readerGone();
        this.fail(code, e instanceof Error ? e.message : String(e));
      }
      if (n <= 0) return; // nothing taken: try again next drain rather than spin
      this.advance(n);
    }
  }

  /**
   * Gives up on what is still queued (the run is ending and the reader is not
   * taking it): those lines count as dropped, unless the reader is gone.
   * Returns how many counted lines were dropped by this call.
   */
  abandon(): number {
    this.seal();
    this.finishCutLine();
    let n = 0;
    for (const c of this.chunks) {
      for (let i = c.next; i < c.counted.length; i++) if (c.counted[i]) n++;
      this.pending.recycle(c.buf);
    }
    this.chunks = [];
    this.queued = 0;
    if (!this.gone) this.dropped += n;
    return this.gone ? 0 : n;
  }

  /**
   * A partial write can stop inside a line; dropping the rest would leave the
   * stream ending mid-line, which a reader cannot parse. So the rest of that
   * one line is written, waiting a little for a slow reader to take it; a
   * stalled one is not waited for (a stop must take under a second).
   */
  private finishCutLine(waitMs = 200): void {
    const c = this.chunks[0];
    if (c === undefined || this.gone || this.failed || c.next >= c.ends.length) return;
    const line = c.next;
    if (c.off <= (line === 0 ? 0 : c.ends[line - 1]!)) return;
    const deadline = performance.now() + waitMs;
    while (this.chunks[0] === c && c.next === line) {
      let n = 0;
      try {
        n = writeSync(this.fd, c.buf, c.off, c.ends[line]! - c.off);
      } catch (e) {
        const code = errnoCode(e);
        if (code !== "EAGAIN" && code !== "EWOULDBLOCK" && code !== "EINTR") return;
      }
      if (n > 0) this.advance(n);
      else if (performance.now() > deadline) return;
      else Bun.sleepSync(2);
    }
  }

  private readerGone(): never {
    this.gone = true;
    this.chunks = [];
    this.queued = 0;
    throw new PipeClosed("stdout closed");
  }

  private fail(code: string, message: string): never {
    this.abandon();
    this.failed = true;
    // node:fs messages read "ENOSPC: no space left on device, write": keep the words.
    const detail = message.replace(/^[A-Z]+:\s*/, "").replace(/,\s*write[v]?$/, "");
    throw new OutputError(code, detail);
  }

  /** Moves the lines pushed since the last flush into one encoded chunk. */
  private seal(): void {
    // Bytes, not ends.length: every line ends in a newline, and a fresh `ends` ([]) has another
    // array shape than a filled one (an exit from optimized code at each idle drain's flush).
    if (this.pending.len === 0) return;
    const { ends, counted } = this.pending;
    this.chunks.push({ buf: this.pending.take(), off: 0, ends, counted, next: 0 });
  }

  private write(): number {
    const first = this.chunks[0]!;
    if (this.chunks.length === 1) return writeSync(this.fd, first.buf, first.off, first.buf.length - first.off);
    const bufs = this.chunks.slice(0, IOV_MAX).map((c) => (c.off === 0 ? c.buf : c.buf.subarray(c.off)));
    return writevSync(this.fd, bufs);
  }

  /** Accounts for n bytes written from the front of the queue. */
  private advance(n: number): void {
    this.queued -= n;
    while (n > 0 && this.chunks.length > 0) {
      const c = this.chunks[0]!;
      const take = Math.min(n, c.buf.length - c.off);
      c.off += take;
      n -= take;
      while (c.next < c.ends.length && c.ends[c.next]! <= c.off) {
        if (c.counted[c.next]) this.written++;
        c.next++;
      }
      if (c.off === c.buf.length) this.pending.recycle(this.chunks.shift()!.buf);
    }
  }
}
