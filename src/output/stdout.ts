/**
 * Whole-document writes to stdout for the commands that print a report and
 * end (`stats`, `mem`, `doctor`). process.stdout.write reports a failed write
 * as an unhandled 'error' event (a stack trace, or exit 0 with nothing
 * written); this writes synchronously and says what went wrong: PipeClosed when
 * the reader went away (a quiet, normal stop), OutputError otherwise (one line,
 * exit 1).
 */
import { readFileSync, readlinkSync, writeSync } from "node:fs";
import { OutputError, PipeClosed } from "./sink.ts";

const O_CLOEXEC = 0o2000000;

/**
 * Whether fd 1 was closed when this process started (`dual-slot >&-`). Bun
 * then opens /dev/null there itself, close-on-exec; a shell's `>/dev/null`
 * (or systemd's StandardOutput=null, a dup2) never leaves that flag on fd 1.
 * Without this, every line would go to /dev/null and the run would end "clean".
 */
export function stdoutWasClosed(): boolean {
  try {
    if (readlinkSync("/proc/self/fd/1") !== "/dev/null") return false;
    const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync("/proc/self/fdinfo/1", "utf8"));
    return flags !== null && (Number.parseInt(flags[1]!, 8) & O_CLOEXEC) !== 0;
  } catch {
    return false;
  }
}

/** The OutputError for a stdout closed at start (see stdoutWasClosed). */
export function closedStdoutError(): OutputError {
  return new OutputError("EBADF", "it was closed when the agent started: what it printed would reach no one");
}

export interface WriteOptions {
  fd?: number;
  /** Asked while a non-blocking reader is full: true gives up on the rest. */
  giveUp?: () => boolean;
}

export async function writeStdout(text: string, opts: WriteOptions = {}): Promise<void> {
  const fd = opts.fd ?? 1;
  if (fd === 1 && stdoutWasClosed()) throw closedStdoutError();
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "EIO";
      if (code === "EAGAIN" || code === "EWOULDBLOCK") {
        // Someone made the descriptor non-blocking: wait for the reader, without spinning.
        if (opts.giveUp?.() === true) return;
        await Bun.sleep(10);
        continue;
      }
      if (code === "EINTR") continue;
      if (code === "EPIPE" || code === "ECONNRESET") throw new PipeClosed("stdout closed");
      const msg = e instanceof Error ? e.message : String(e);
      throw new OutputError(code, msg.replace(/^[A-Z]+:\s*/, "").replace(/,\s*write$/, ""));
    }
  }
}

/** Runs `f`, treating a reader that went away as the end of the command, not an error. */
export async function untilReaderGone(f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof PipeClosed)) throw e;
  }
}
