/**
 * The agent's stdout sink (src/output/sink.ts) on real file descriptors: a
 * drain's lines leave in one write, a reader that went away is PipeClosed
 * whether or not there is something to write, other write errors are not.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fcntl } from "../../src/ffi/libc.ts";
import { logfmt, parseLogfmt } from "../../src/output/logfmt.ts";
import { LossWarnings } from "../../src/output/loss-warning.ts";
import { CHUNK_BYTES, LineSink, OutputError, PendingLines, PipeClosed } from "../../src/output/sink.ts";
import { lostJson, lostRow } from "../../src/render/lost.ts";
import { SCHEMA_VERSION } from "../../src/render/schema.ts";
import { schemaErrors } from "../helpers/schema.ts";

const F_GETPIPE_SZ = 1032;
const dir = mkdtempSync(join(tmpdir(), "dual-slot-sink-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Descriptors still open; closed through `close` so afterAll never closes a number reused since. */
const open = new Set<number>();
afterAll(() => {
  for (const fd of open) closeSync(fd);
});
const track = (fd: number): number => {
  open.add(fd);
  return fd;
};
const close = (fd: number): void => {
  open.delete(fd);
  closeSync(fd);
};

let fifos = 0;
/** A named pipe; the sink sees a pipe exactly as with `dual-slot | reader`. */
function fifo(): string {
  const path = join(dir, `fifo${fifos++}`);
  const r = Bun.spawnSync(["mkfifo", path], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`mkfifo failed: ${r.stderr.toString()}`);
  return path;
}

/** Both ends of a pipe, opened without blocking on each other. */
function pipe(): { r: number; w: number } {
  const path = fifo();
  const r = track(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK));
  const w = track(openSync(path, constants.O_WRONLY));
  return { r, w };
}

/** Everything readable now from a non-blocking fd. */
function drain(fd: number): string {
  const buf = Buffer.alloc(1 << 20);
  let out = "";
  for (;;) {
    try {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return out;
      out += buf.toString("utf8", 0, n);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") return out;
      throw e;
    }
  }
}

/**
 * A SOCK_SEQPACKET socket pair keeps message boundaries: each write(2) is one
 * message and each read(2) returns one, so reads count the sink's writes.
 */
function packetPair(): { r: number; w: number } {
  const AF_UNIX = 1;
  const SOCK_SEQPACKET = 5;
  const SOCK_NONBLOCK = 0o4000;
  const SOCK_CLOEXEC = 0o2000000;
  const libc = dlopen("libc.so.6", {
    socketpair: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  });
  try {
    const sv = new Int32Array(2);
    const rc = libc.symbols.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ptr(sv));
    if (rc !== 0) throw new Error("socketpair failed");
    return { r: track(sv[0]!), w: track(sv[1]!) };
  } finally {
    libc.close();
  }
}

/** The messages waiting on a non-blocking SOCK_SEQPACKET socket, one string per write. */
function packets(fd: number): string[] {
  const buf = Buffer.alloc(1 << 20);
  const out: string[] = [];
  for (;;) {
    try {
      out.push(buf.toString("utf8", 0, readSync(fd, buf, 0, buf.length, null)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") return out;
      throw e;
    }
  }
}

/** Runs `f` and returns what it threw (or null). */
function thrown(f: () => void): unknown {
  try {
    f();
    return null;
  } catch (e) {
    return e;
  }
}

describe("one write per drain", () => {
  test("the lines pushed during a drain leave in a single write, newline-terminated, in order", () => {
    const { r, w } = packetPair();
    const sink = new LineSink(w);
    const lines = Array.from({ length: 500 }, (_, i) => `{"n":${i},"comm":"é ${"x".repeat(i % 40)}"}`);
    for (const l of lines) sink.push(l);
    sink.flush();
    expect(packets(r)).toEqual([`${lines.join("\n")}\n`]);

    // The next drain: its own single write, nothing repeated from the last one.
    sink.push("a");
    sink.push("b");
    sink.flush();
    expect(packets(r)).toEqual(["a\nb\n"]);
  });

  test("a drain with no lines writes nothing while the reader is there", () => {
    const { r, w } = packetPair();
    const sink = new LineSink(w);
    sink.flush();
    sink.flush();
    expect(packets(r)).toEqual([]);
  });

  test("an empty line is still a line", () => {
    const { r, w } = pipe();
    const sink = new LineSink(w);
    sink.push("");
    sink.push("x");
    sink.flush();
    expect(drain(r)).toBe("\nx\n");
  });

  test("a batch larger than the pipe leaves whole and in order through a non-blocking pipe (EAGAIN, partial writes)", async () => {
    const path = fifo();
    const copy = join(dir, "copy");
    // The reader holds its end open but starts reading only later: the first
    // write fills the pipe, so the sink surely meets EAGAIN before cat drains it.
    const cat = Bun.spawn(["sh", "-c", 'exec 3<"$1"; sleep 0.2; exec cat <&3', "sh", path], {
      stdout: Bun.file(copy),
      stderr: "pipe",
    });
    // O_NONBLOCK|O_WRONLY fails with ENXIO until the reader has opened its end.
    let w = -1;
    for (let i = 0; w < 0; i++) {
      try {
        w = track(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENXIO" || i > 500) throw e;
        await Bun.sleep(10);
      }
    }
    const sink = new LineSink(w);
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${"y".repeat(i % 97)}`);
    for (const l of lines) sink.push(l);
    // ~1.2 MB into a 64 KiB pipe: EAGAIN leaves the rest for the next drain, as the agent's timer would.
    for (let i = 0; !sink.idle && i < 2000; i++) {
      sink.flush();
      if (!sink.idle) await Bun.sleep(5);
    }
    expect(sink.idle).toBe(true);
    expect(sink.written).toBe(lines.length);
    close(w);
    expect(await cat.exited).toBe(0);
    expect(readFileSync(copy, "utf8")).toBe(`${lines.join("\n")}\n`);
  });
});

describe("the reader went away", () => {
  test("a chunk that fills in the middle of a drain is written at once, the rest at the flush, all in order", () => {
    const { r, w } = pipe();
    const sink = new LineSink(w).nonBlocking();
    const line = Buffer.from(`${"y".repeat(999)}`);
    const n = Math.ceil((1.5 * CHUNK_BYTES) / 1000);
    for (let i = 0; i < n; i++) {
      line.write(String(i).padStart(6, "0"), 0);
      sink.pushBytes(line, 0, line.length);
    }
    const early = drain(r);
    expect(early.length).toBeGreaterThanOrEqual(CHUNK_BYTES);
    expect(early.length).toBeLessThan(n * 1000);
    sink.flush();
    const all = (early + drain(r)).split("\n");
    expect(all.pop()).toBe("");
    expect(all.map((l) => Number(l.slice(0, 6)))).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(sink.written).toBe(n);
    expect(sink.idle).toBe(true);
  });

  test("what a write between flushes meets is reported by the next flush, once (EPIPE, ENOSPC)", () => {
    const lines = Math.ceil(CHUNK_BYTES / 1000) + 1;
    const fill = (sink: LineSink) => {
      const line = Buffer.alloc(999, 0x7a);
      for (let i = 0; i < lines; i++) sink.pushBytes(line, 0, line.length);
    };
    const { r, w } = pipe();
    const closed = new LineSink(w).nonBlocking();
    close(r);
    expect(thrown(() => fill(closed))).toBeNull();
    expect(thrown(() => closed.flush())).toBeInstanceOf(PipeClosed);
    expect(thrown(() => closed.flush())).toBeNull();
    expect(closed.dropped).toBe(0);

    const full = new LineSink(track(openSync("/dev/full", "w")));
    expect(thrown(() => fill(full))).toBeNull();
    const e = thrown(() => full.flush());
    expect(e).toBeInstanceOf(OutputError);
    expect((e as OutputError).code).toBe("ENOSPC");
    expect(thrown(() => full.flush())).toBeNull();
    expect(full.dropped).toBe(lines);
  });

  test("a write to a pipe without reader (EPIPE) is PipeClosed", () => {
    const { r, w } = pipe();
    const sink = new LineSink(w);
    close(r);
    sink.push("nobody reads this");
    const e = thrown(() => sink.flush());
    expect(e).toBeInstanceOf(PipeClosed);
    expect((e as Error).name).toBe("PipeClosed");
  });

  test("with nothing to write, a pipe without reader is still PipeClosed (an idle agent ends with `| head`)", () => {
    const { r, w } = pipe();
    const sink = new LineSink(w);
    sink.flush(); // reader present: nothing happens
    close(r);
    expect(thrown(() => sink.flush())).toBeInstanceOf(PipeClosed);
  });

  test("the peer of a socket going away is PipeClosed too, with and without lines", () => {
    for (const withLines of [false, true]) {
      const { r, w } = packetPair();
      const sink = new LineSink(w);
      close(r);
      if (withLines) sink.push("x");
      expect(thrown(() => sink.flush())).toBeInstanceOf(PipeClosed);
    }
  });

  test("PipeClosed is reported once: later flushes drop lines quietly", () => {
    const { r, w } = pipe();
    const sink = new LineSink(w);
    close(r);
    sink.push("a");
    expect(thrown(() => sink.flush())).toBeInstanceOf(PipeClosed);
    sink.push("b");
    expect(thrown(() => sink.flush())).toBeNull();
    expect(thrown(() => sink.flush())).toBeNull();
  });
});

describe("other write errors", () => {
  test("/dev/full (ENOSPC) raises its own error, not PipeClosed", () => {
    const fd = track(openSync("/dev/full", "w"));
    const sink = new LineSink(fd);
    sink.flush(); // nothing to write: /dev/full is not a closed pipe
    sink.push("x");
    const e = thrown(() => sink.flush());
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(PipeClosed);
    expect((e as NodeJS.ErrnoException).code).toBe("ENOSPC");
  });

  test("a regular file gets every line", () => {
    const path = join(dir, "file");
    const fd = track(openSync(path, "w"));
    const sink = new LineSink(fd);
    sink.push("one");
    sink.flush();
    sink.push("two");
    sink.push("three");
    sink.flush();
    expect(readFileSync(path, "utf8")).toBe("one\ntwo\nthree\n");
  });
});

describe("bounded, non-blocking, honest counts", () => {
  test("EAGAIN returns at once with the rest queued (no spin); printed counts whole lines only", () => {
    const { r, w } = pipe();
    const sink = new LineSink(w).nonBlocking();
    const line = "z".repeat(999); // 1000 bytes with its newline
    for (let i = 0; i < 2000; i++) sink.push(line);
    // 2 MB into a 1 MiB pipe nobody reads: a blocking write would never return (the test would time out).
    sink.flush();
    expect(sink.idle).toBe(false);
    const got = drain(r);
    expect(sink.written).toBe(Math.floor(got.length / 1000));
    expect(sink.queuedBytes).toBe(2_000_000 - got.length);
    sink.restore();
  });

  test("a pipe is enlarged to 1 MiB, so one drain's write carries a burst", () => {
    const { w } = pipe();
    expect(fcntl(w, F_GETPIPE_SZ, 0)).toBe(64 * 1024);
    const sink = new LineSink(w).nonBlocking();
    expect(fcntl(w, F_GETPIPE_SZ, 0)).toBe(1024 * 1024);
    sink.restore();
  });

  test("lines past the bound are dropped and counted; uncounted lines never count", () => {
    const { w } = pipe();
    const sink = new LineSink(w, 4096);
    let accepted = 0;
    for (let i = 0; i < 100; i++) if (sink.push("x".repeat(99))) accepted++;
    expect(accepted).toBe(40); // 40 x 100 bytes fit 4096
    expect(sink.dropped).toBe(60);
    expect(sink.push("y".repeat(200), false)).toBe(false);
    expect(sink.dropped).toBe(60);
  });

  test("abandon() finishes a half-written line, then counts what the reader never took as dropped", () => {
    const { r, w } = pipe();
    const sink = new LineSink(w).nonBlocking();
    for (let i = 0; i < 1000; i++) sink.push("q".repeat(1499));
    sink.flush();
    const got = drain(r).length;
    expect(got % 1500).not.toBe(0); // the pipe took part of a line
    const whole = Math.floor(got / 1500);
    expect(sink.written).toBe(whole);
    // The reader took what it could: the cut line is finished, so the stream ends at a newline.
    expect(sink.abandon()).toBe(1000 - whole - 1);
    const rest = drain(r);
    expect((got + rest.length) % 1500).toBe(0);
    expect(rest.endsWith("\n")).toBe(true);
    expect(sink.written).toBe(whole + 1);
    expect(sink.dropped).toBe(1000 - whole - 1);
    expect(sink.idle).toBe(true);
    sink.restore();
  });

  test("a reader gone leaves nothing counted as dropped (a clean `| head`)", () => {
    const { r, w } = pipe();
    const sink = new LineSink(w);
    close(r);
    sink.push("a");
    expect(thrown(() => sink.flush())).toBeInstanceOf(PipeClosed);
    expect(sink.abandon()).toBe(0);
    expect(sink.dropped).toBe(0);
  });

  test("an unwritable output is OutputError: one line naming the errno; what was queued is dropped", () => {
    const fd = track(openSync("/dev/full", "w"));
    const sink = new LineSink(fd);
    sink.push("a");
    sink.push("b");
    const e = thrown(() => sink.flush());
    expect(e).toBeInstanceOf(OutputError);
    expect((e as Error).message).toBe("cannot write to stdout: ENOSPC (no space left on device)");
    expect((e as OutputError).exitCode).toBe(1);
    expect(sink.dropped).toBe(2);
    expect(sink.push("c")).toBe(false);
    expect(sink.dropped).toBe(3);
    expect(thrown(() => sink.flush())).toBeNull();
  });

  test("nonBlocking() sets O_NONBLOCK on a pipe and restore() puts the flags back", () => {
    const path = fifo();
    track(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK));
    const w = track(openSync(path, constants.O_WRONLY));
    const flags = () =>
      Number.parseInt(/^flags:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${w}`, "utf8"))![1]!, 8);
    const before = flags();
    expect(before & 0o4000).toBe(0);
    const sink = new LineSink(w).nonBlocking();
    expect(flags() & 0o4000).toBe(0o4000);
    sink.restore();
    expect(flags()).toBe(before);
  });
});

describe("the summary line is logfmt", () => {
  test("values with spaces, quotes or = are quoted and escaped; the parser reads them back", () => {
    const line = logfmt([
      ["events", 3],
      ["stop", "stdout closed"],
      ["odd", 'say "hi"\\'],
      ["eq", "a=b"],
      ["empty", ""],
      ["lost_per_cpu", "[0,1]"],
    ]);
    expect(line).toBe('events=3 stop="stdout closed" odd="say \\"hi\\"\\\\" eq="a=b" empty="" lost_per_cpu=[0,1]');
    expect(parseLogfmt(line)).toEqual({
      events: "3",
      stop: "stdout closed",
      odd: 'say "hi"\\',
      eq: "a=b",
      empty: "",
      lost_per_cpu: "[0,1]",
    });
  });

  test("C1 controls, bidi marks and line separators are quoted as \\uXXXX, and read back", () => {
    const hostile = "a\u009b31m\u202eb\u2028c";
    const line = logfmt([["last_malformed", hostile]]);
    expect(line).toBe('last_malformed="a\\u009b31m\\u202eb\\u2028c"');
    expect(parseLogfmt(line)).toEqual({ last_malformed: hostile });
  });
});

describe("loss you can see", () => {
  test("at most one warning per 5 s, summing per CPU since the last one", () => {
    let now = 0;
    const lines: string[] = [];
    const w = new LossWarnings({ sharedBuffer: false, emit: (l) => lines.push(l), now: () => now });
    now = 2000;
    w.lost(1, 5);
    w.lost(0, 3);
    expect(w.tick()).toBe("lost 3 events on CPU 0, 5 on CPU 1 in the last 2s");
    now = 3000;
    w.lost(0, 7);
    expect(w.tick()).toBeNull(); // within 5 s of the last warning
    now = 6000;
    w.lost(0, 1);
    expect(w.tick()).toBeNull();
    now = 7000;
    expect(w.tick()).toBe("lost 8 events on CPU 0 in the last 5s");
    now = 20_000;
    expect(w.tick()).toBeNull(); // nothing new: nothing said
    expect(lines).toHaveLength(2);
  });

  test("the ring buffer says it is one buffer for all CPUs; dropped output is told too", () => {
    let now = 1000;
    const w = new LossWarnings({ sharedBuffer: true, outputLimit: 4096, emit: () => {}, now: () => now });
    now = 11_000;
    w.lost(0, 4);
    w.lost(1, 2);
    w.dropped(9);
    expect(w.tick()).toBe(
      "lost 6 events in the last 10s: the ring buffer shared by all CPUs was full (CPU 0: 4, CPU 1: 2); dropped 9 output lines in the last 10s: more waited for stdout than the output buffer holds (--output-buffer 4 KiB)",
    );
  });

  test("the in-band lost record: NDJSON and a LOST table row", () => {
    const r = { cpu: 1, lost: 42, wallNs: 1_764_000_000_123_456_789n };
    const o = JSON.parse(lostJson(r, "host-a")) as Record<string, unknown>;
    expect(schemaErrors(o)).toEqual([]);
    expect(o).toEqual({
      schema: SCHEMA_VERSION,
      host: "host-a",
      event: "lost",
      time: "2025-11-24T16:00:00.123456789Z",
      cpu: 1,
      lost: 42,
    });
    expect(lostRow(r)).toBe(
      `${"LOST".padEnd(12)} ${"-".padEnd(8)} ${"-".padEnd(8)} ${"-".padEnd(16)} cpu=1 lost=42 time=2025-11-24T16:00:00.123456789Z`,
    );
  });
});

describe("PendingLines hands its buffer over", () => {
  const line = (p: PendingLines, s: string) => p.pushString(s, Buffer.byteLength(s) + 1, true);

  test("take() gives the bytes without a copy; a recycled buffer carries a later drain, a held one never does", () => {
    const p = new PendingLines();
    line(p, "one");
    const a = p.take();
    expect(a.toString()).toBe("one\n");
    line(p, "two");
    const b = p.take();
    expect(b.buffer).not.toBe(a.buffer);
    expect(a.toString()).toBe("one\n"); // still queued somewhere: untouched
    p.recycle(a);
    line(p, "three");
    const c = p.take(); // the queue goes on in the recycled buffer
    line(p, "four");
    const d = p.take();
    expect(d.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(a.buffer);
    expect([b.toString(), c.toString(), d.toString()]).toEqual(["two\n", "three\n", "four\n"]);
  });

  test("adoptPool() moves the other queue's pooled buffers into this one's pool, and the next drains write into them", () => {
    const warm = new PendingLines();
    const mine = new PendingLines();
    line(warm, "warm");
    const a = warm.take();
    warm.recycle(a);
    mine.adoptPool(warm);
    line(warm, "still warm's");
    expect(warm.take().buffer).not.toBe(a.buffer); // gone from the warm-up's pool
    line(mine, "one");
    mine.take(); // the queue goes on in the adopted buffer
    line(mine, "two");
    const b = mine.take();
    expect(b.buffer).toBe(a.buffer);
    expect(b.toString()).toBe("two\n");
  });

  test("a buffer the pool cannot give is allocated as large as the last drain needed, not grown again from 64 KiB", () => {
    const p = new PendingLines();
    const s = "y".repeat(999);
    for (let i = 0; i < 300; i++) line(p, s);
    const big = p.take();
    expect(big.length).toBe(300_000);
    expect(p.buf.length).toBeGreaterThanOrEqual(300_000);
    const before = p.buf;
    for (let i = 0; i < 300; i++) line(p, s);
    expect(p.buf).toBe(before);
  });

  /** A LineSink on a regular file: `feed` pushes lines (and flushes as it likes); the file must hold exactly them. */
  function intoFile(feed: (sink: LineSink, path: string) => string[]): LineSink {
    const dir = mkdtempSync(join(tmpdir(), "ds-lines-"));
    try {
      const path = join(dir, "out");
      const fd = openSync(path, "w");
      const sink = new LineSink(fd);
      const want = feed(sink, path);
      sink.flush();
      closeSync(fd);
      expect(readFileSync(path, "utf8")).toBe(`${want.join("\n")}\n`);
      expect(sink.written).toBe(want.length);
      return sink;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("a drain of several MB is sealed into 1 MiB chunks, written by one flush in order", () => {
    const sink = intoFile((sink, path) => {
      const want: string[] = [];
      for (let i = 0; i < 5000; i++) {
        const s = `line ${i} ${"c".repeat(i % 1500)}`;
        want.push(s);
        sink.push(s);
      }
      expect(readFileSync(path).length).toBe(0);
      return want;
    });
    expect(sink.idle).toBe(true);
  });

  test("lines written across several drains come out whole and in order", () => {
    intoFile((sink) => {
      const want: string[] = [];
      for (let d = 0; d < 20; d++) {
        for (let i = 0; i < 50 + d * 40; i++) {
          const s = `drain ${d} line ${i} ${"x".repeat(i % 97)}`;
          want.push(s);
          sink.push(s);
        }
        sink.flush();
      }
      return want;
    });
  });
});
