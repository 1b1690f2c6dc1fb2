/**
 * `run --output FILE`: the agent's events appended to a file it owns, for an
 * agent that runs for months. The file is root's alone (0600), is never
 * reached through a symlink or a directory another user can write (the agent
 * runs as root: such a path would let that user point its writes anywhere),
 * rotates itself by size (FILE -> FILE.1 -> ... FILE.N) and reopens FILE on
 * SIGHUP so that logrotate, which renames it away, works too.
 *
 * FileWriter takes whole batches (`write(buf)`); FileSink gives it the
 * LineSink shape (`push`/`flush`) so the run loop can use either.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fsMagic } from "../ebpf/host-facts.ts";
import { UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { CHUNK_BYTES, DEFAULT_OUTPUT_LIMIT, OutputError, PendingLines } from "./sink.ts";
import { checkTrustedDirectory, UnsafePath } from "./trusted-path.ts";

export const DEFAULT_ROTATE_SIZE = 100 * 1024 * 1024;
export const DEFAULT_ROTATE_KEEP = 5;
export const MAX_ROTATE_KEEP = 1000;

/** Flags for `run` (the integrator spreads them into runArgs). */
export const outputArgs = {
  output: {
    type: "string",
    description:
      "append events to FILE (created 0600, rotated by size; SIGHUP reopens it for logrotate instead of stopping the agent)",
  },
  "rotate-size": { type: "string", description: "rotate --output past this size: bytes, or K/M/G (default 100M)" },
  "rotate-keep": { type: "string", description: "rotated files kept: FILE.1 .. FILE.N (default 5; 0: none)" },
} as const;

export interface FileOutputOptions {
  path: string;
  /** Bytes a file may reach before the next write goes to a fresh one. */
  rotateSize: number;
  /** FILE.1 (newest) .. FILE.N kept; 0 deletes the full file instead. */
  rotateKeep: number;
}

/** "100M", "512K", "1G", "4096": binary units, as logrotate's `size`. */
export function parseSize(name: string, raw: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(raw.trim());
  if (!m) throw new UsageError(`--${name} expects a size like 4096, 512K, 100M or 1G, got '${raw}'`);
  const unit = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as "" | "K" | "M" | "G"];
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n < 1024 || n > 1024 ** 4)
    throw new UsageError(`--${name} must be between 1K and 1024G, got '${raw}'`);
  return n;
}

/** The --output flags as options; undefined without --output. */
export function fileOutputOptions(args: {
  output?: unknown;
  "rotate-size"?: unknown;
  "rotate-keep"?: unknown;
}): FileOutputOptions | undefined {
  const given = (v: unknown): v is string => typeof v === "string" && v !== "";
  if (!given(args.output)) {
    if (given(args["rotate-size"]) || given(args["rotate-keep"]))
      throw new UsageError("--rotate-size and --rotate-keep need --output");
    return undefined;
  }
  let keep = DEFAULT_ROTATE_KEEP;
  if (given(args["rotate-keep"])) {
    const s = args["rotate-keep"].trim();
    if (!/^\d+$/.test(s) || Number(s) > MAX_ROTATE_KEEP)
      throw new UsageError(`--rotate-keep expects a whole number from 0 to ${MAX_ROTATE_KEEP}, got '${s}'`);
    keep = Number(s);
  }
  return {
    path: resolve(args.output),
    rotateSize: given(args["rotate-size"]) ? parseSize("rotate-size", args["rotate-size"]) : DEFAULT_ROTATE_SIZE,
    rotateKeep: keep,
  };
}

/** Kernel interfaces that look like files (statfs f_type): writing events there is a mistake at best. */
const PSEUDO_FS = new Map<number, string>([
  [0x9fa0, "procfs"],
  [0x62656572, "sysfs"],
  [0x1cd1, "devpts"],
  [0x63677270, "cgroup2"],
  [0x27e0eb, "cgroup"],
  [0x64626720, "debugfs"],
  [0x74726163, "tracefs"],
  [0x73636673, "securityfs"],
  [0xcafe4a11, "the BPF filesystem"],
  [0x6e736673, "nsfs"],
  [0x19800202, "mqueue"],
  [0x42494e4d, "binfmt_misc"],
  [0x62656570, "configfs"],
  [0xde5e81e4, "efivarfs"],
  [0x6165676c, "pstore"],
  [0xf97cff8c, "selinuxfs"],
]);

/**
 * Opens (creating 0600) a file for appending after the checks above, and
 * refuses a symlink, anything but a regular file, a file owned by another
 * user and a file with other hard links. Returns the path it opened, with the
 * directory resolved: rotation renames there, not through the links again.
 */
function openSafe(path: string): { fd: number; size: number; file: string } {
  const dir = checkTrustedDirectory(dirname(path));
  const magic = fsMagic(dir);
  const fs = magic === null ? undefined : PSEUDO_FS.get(magic);
  if (fs !== undefined) throw new UnsafePath(`${dir} is on ${fs}, not a filesystem for events`);
  const file = join(dir, basename(path));
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new UnsafePath(`${file} is a symlink`);
    throw new UnsafePath(`${file}: ${code ?? String(e)}`);
  }
  try {
    const st = fstatSync(fd);
    const me = process.geteuid?.() ?? 0;
    if (!st.isFile()) throw new UnsafePath(`${file} is not a regular file`);
    if (st.uid !== me) throw new UnsafePath(`${file} is owned by uid ${st.uid}`);
    if (st.nlink !== 1) throw new UnsafePath(`${file} has ${st.nlink} hard links`);
    // An existing file may have been made readable by others; events name
    // every command line on the host, so they are root's alone.
    if ((st.mode & 0o7777) !== 0o600) fchmodSync(fd, 0o600);
    return { fd, size: st.size + endLine(fd, st.size), file };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * A file that ends inside a line (a write cut short by ENOSPC, a crash) gets
 * its newline before anything is appended: the next record would otherwise
 * be glued to the cut one, and both lost to a reader. Returns the bytes added.
 */
function endLine(fd: number, size: number): number {
  if (size === 0) return 0;
  const last = new Uint8Array(1);
  // The same file, read through its descriptor (not its name, which could change); append-only
  // policies (an LSM allowing O_APPEND writes only) just skip the check.
  let rd = -1;
  try {
    rd = openSync(`/proc/self/fd/${fd}`, constants.O_RDONLY);
    if (readSync(rd, last, 0, 1, size - 1) !== 1 || last[0] === 0x0a) return 0;
  } catch {
    return 0;
  } finally {
    if (rd >= 0) closeSync(rd);
  }
  writeSync(fd, new Uint8Array([0x0a]));
  return 1;
}

/** A batch's write that failed after `kept` bytes of whole lines reached the file. */
export class PartialWrite extends Error {
  readonly code: string;
  constructor(
    override readonly cause: NodeJS.ErrnoException,
    readonly kept: number,
  ) {
    super(cause.message);
    this.code = cause.code ?? "EIO";
  }
}

export class FileWriter {
  private fd: number;
  /** The file opened: opts.path with its directory resolved (see openSafe). */
  private file: string;
  /** Where the file ends, from fstat: right even after a `copytruncate`. */
  private size: number;
  private closed = false;
  /** Rotations done, for tests and the summary. */
  rotations = 0;

  constructor(readonly opts: FileOutputOptions) {
    if (!Number.isSafeInteger(opts.rotateSize) || opts.rotateSize < 1)
      throw new RangeError(`rotateSize ${opts.rotateSize}`);
    if (!Number.isInteger(opts.rotateKeep) || opts.rotateKeep < 0 || opts.rotateKeep > MAX_ROTATE_KEEP)
      throw new RangeError(`rotateKeep ${opts.rotateKeep}`);
    ({ fd: this.fd, size: this.size, file: this.file } = openSafe(opts.path));
  }

  /**
   * Appends `buf` whole. A write that would take a non-empty file past
   * rotateSize goes to a fresh file: a batch (and so a line) is never split
   * across files, and a file exceeds the size only by a single batch larger
   * than it.
   */
  write(buf: Uint8Array): void {
    if (this.closed) throw new Error("FileWriter: write after close");
    if (buf.length === 0) return;
    this.size = fstatSync(this.fd).size;
    if (this.size > 0 && this.size + buf.length > this.opts.rotateSize) this.rotate();
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(this.fd, buf, off, buf.length - off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EINTR") continue;
        throw new PartialWrite(e as NodeJS.ErrnoException, this.keepWholeLines(buf, off));
      }
    }
    this.size += buf.length;
  }

  /**
   * After a write that failed part way (ENOSPC, say): the file cut back to the
   * last whole line written, so that its reader never meets a torn line.
   * Returns the bytes of `buf` kept: its whole lines that reached the file.
   */
  private keepWholeLines(buf: Uint8Array, off: number): number {
    const keep = off === 0 ? 0 : buf.lastIndexOf(0x0a, off - 1) + 1;
    if (keep < off) {
      try {
        ftruncateSync(this.fd, this.size + keep);
      } catch {
        // Cannot cut it (a filesystem that refuses): the torn line stays, and is not counted as written.
      }
    }
    this.size += keep;
    return keep;
  }

  /** FILE.N-1 -> FILE.N, ..., FILE -> FILE.1, then a new FILE. */
  private rotate(): void {
    const path = this.file;
    const keep = this.opts.rotateKeep;
    if (keep === 0) {
      rmSync(path, { force: true });
    } else {
      rmSync(`${path}.${keep}`, { force: true });
      for (let i = keep - 1; i >= 1; i--) {
        try {
          renameSync(`${path}.${i}`, `${path}.${i + 1}`);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        }
      }
      renameSync(path, `${path}.1`);
    }
    this.rotations++;
    this.reopen();
  }

  /**
   * Opens FILE again: after logrotate renamed it away (create mode) this
   * starts a new FILE; otherwise it continues the same one. On failure the
   * old descriptor stays in use (events still land in the renamed file) and
   * the error is thrown for the caller to report.
   */
  reopen(): void {
    if (this.closed) return;
    const next = openSafe(this.opts.path);
    closeSync(this.fd);
    ({ fd: this.fd, size: this.size, file: this.file } = next);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/**
 * The LineSink surface (src/output/sink.ts) over a FileWriter, so `run` can
 * use either: lines collect during a drain and go out in one write per
 * flush. A regular file never makes the agent wait on a reader, so nothing
 * stays queued across drains; the bound only caps one drain's lines.
 */
export class FileSink {
  private readonly pending = new PendingLines();
  /** Counted lines written completely. */
  written = 0;
  /** Counted lines over the bound, abandoned, or lost to a write error. */
  dropped = 0;

  constructor(
    readonly writer: FileWriter,
    readonly limit = DEFAULT_OUTPUT_LIMIT,
    /** Past this many queued bytes a push writes them (the warm-up's sink, which must never write, sets Infinity). */
    private readonly chunkBytes = CHUNK_BYTES,
  ) {}

  /** Queues one line; false when it does not fit the bound (counted as dropped). */
  push(line: string, counted = true): boolean {
    const n = Buffer.byteLength(line) + 1;
    if (this.pending.len + n > this.limit) {
      if (counted) this.dropped++;
      return false;
    }
    this.pending.pushString(line, n, counted);
    if (this.pending.len >= this.chunkBytes) this.flush();
    return true;
  }

  /** push() for a line already rendered as bytes: src[start, end), without its newline. */
  pushBytes(src: Buffer, start: number, end: number, counted = true): boolean {
    if (this.pending.len + end - start + 1 > this.limit) {
      if (counted) this.dropped++;
      return false;
    }
    this.pending.pushBytes(src, start, end, counted);
    if (this.pending.len >= this.chunkBytes) this.flush();
    return true;
  }

  /**
   * Writes the queued lines; a write error (ENOSPC, EIO...) is an OutputError,
   * the lines that reached the file whole counted as written, the rest as dropped.
   */
  flush(): void {
    if (this.pending.ends.length === 0) return;
    const { ends, counted } = this.pending;
    const n = counted.filter(Boolean).length;
    const buf = this.pending.take();
    try {
      this.writer.write(buf);
      this.pending.recycle(buf);
    } catch (e) {
      const kept = e instanceof PartialWrite ? e.kept : 0;
      let whole = 0;
      for (let i = 0; i < ends.length && ends[i]! <= kept; i++) if (counted[i]) whole++;
      this.written += whole;
      this.dropped += n - whole;
      const code = (e as NodeJS.ErrnoException).code ?? "EIO";
      // node:fs says "ENOSPC: no space left on device, write": the words, once.
      const detail = (e as Error).message.replace(/^[A-Z]+:\s*/, "").replace(/,\s*write[v]?$/, "");
      throw new OutputError(code, detail, this.writer.opts.path);
    }
    this.written += n;
  }

  get queuedBytes(): number {
    return this.pending.len;
  }

  get idle(): boolean {
    return this.pending.ends.length === 0;
  }

  /** LineSink's; a regular file needs neither. */
  nonBlocking(): this {
    return this;
  }

  restore(): void {}

  /** Drops what is queued (counted as dropped); returns how many counted lines. */
  abandon(): number {
    const n = this.pending.counted.filter(Boolean).length;
    this.dropped += n;
    this.pending.recycle(this.pending.take());
    return n;
  }

  close(): void {
    this.flush();
    this.writer.close();
  }
}

/**
 * SIGHUP reopens the file (logrotate's `postrotate kill -HUP`, systemd's
 * ExecReload) instead of stopping the agent. Returns the function that
 * removes the handler. A reopen that fails is logged and the agent goes on
 * writing to the file it has.
 */
export function reopenOnHangup(writer: FileWriter): () => void {
  const onHup = () => {
    try {
      writer.reopen();
      log.debug(`SIGHUP: reopened ${writer.opts.path}`);
    } catch (e) {
      log.warn(`SIGHUP: cannot reopen ${writer.opts.path} (${(e as Error).message}); still writing to the old file`);
    }
  };
  process.on("SIGHUP", onHup);
  return () => process.off("SIGHUP", onHup);
}
