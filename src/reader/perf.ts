/**
 * Per-CPU perf buffer reader, in the spirit of cilium/ebpf's perf.Reader: it
 * reads each CPU's ring where it lies in memory, hands out samples, and counts
 * lost records per CPU.
 *
 * libbpf's perf_buffer__new_raw does the setup and teardown (one perf event
 * per CPU with our attr, each ring mmapped, the fds put in the map), but its
 * consume path is never used: that calls back into JS once per record from a C
 * frame. Built with our own attr so the kernel wakes no one per event: the
 * agent drains on a timer, so a per-sample wakeup (libbpf's default
 * wakeup_events = 1) would only cost the traced processes an irq_work each.
 */
import { type Pointer, ptr, toArrayBuffer } from "bun:ffi";
import { readFileSync } from "node:fs";
import { parseCpuIds, perfOutputSignals } from "../ebpf/host-facts.ts";
import { asPtr, checkInt, checkPtr, libbpf } from "../ffi/libbpf.ts";
import { pageSize, signalWhenReady, stopSignals } from "../ffi/libc.ts";
import { type Framed, framePerf, PERF_RECORD_MAX, type RecordHandler } from "./framing.ts";
import type { EventSource, Rounds } from "./source.ts";
import type { SyntheticRing } from "./synthetic-ring.ts";

const PERF_TYPE_SOFTWARE = 1;
const PERF_COUNT_SW_BPF_OUTPUT = 10;
const PERF_SAMPLE_RAW = 1 << 10;
const ATTR_FLAG_WATERMARK = 1n << 14n;

/** struct perf_event_mmap_page: data_head, data_tail, data_offset, data_size, as u64 indexes from byte 1024. */
const MMAP_PAGE_FIELDS = 1024;
const HEAD = 0;
const TAIL = 1;
const DATA_OFFSET = 2;
const DATA_SIZE = 3;

/** consume() without turns: each ring read to its head in one go. */
const WHOLE: Rounds = { bytes: Number.POSITIVE_INFINITY, after: () => {} };

interface CpuRing {
  cpu: number;
  /** data_head .. data_size of the ring's header page. */
  ctl: BigUint64Array;
  /** The data area: a power of two, right after the header page. */
  data: Uint8Array;
}

export class PerfReader implements EventSource {
  private pb: Pointer | null = null;
  private rings: CpuRing[] = [];
  private readonly lostPerCpu: number[];
  private malformedRecords = 0;
  /** signalWhenHalfFull() set O_ASYNC on (some of) the buffers' fds. */
  private signalling = false;
  /** Where a sample that wraps past the end of its ring is put back together. */
  private readonly scratch = new Uint8Array(PERF_RECORD_MAX);
  private readonly framed: Framed = { tail: 0n, consumed: 0, records: 0, bytes: 0, lost: 0, bad: 0 };
  /** consume(rounds): per CPU number, records of this call still unread. */
  private pending: boolean[] = [];
  /** consume(rounds): per ring, the head this call reads up to, and the bytes it handed out. */
  private heads: bigint[] = [];
  private got: number[] = [];

  /**
   * `cpus`: the possible CPUs, which lostByCpu() is indexed by. `wake`: when
   * the kernel wakes the reader (and signalWhenHalfFull()'s SIGIO comes):
   * once half a ring has been written since the last wake-up, or at every
   * sample (a doorbell's, whose samples are rare and each one a call).
   */
  constructor(
    mapFd: number,
    pages: number,
    private readonly onRecord: RecordHandler,
    cpus: number,
    wake: "half" | "each" = "half",
  ) {
    this.lostPerCpu = new Array<number>(cpus).fill(0);
    const page = pageSize();
    // struct perf_event_attr, PERF_ATTR_SIZE_VER0 (64 bytes) is all we set.
    const attr = new ArrayBuffer(64);
    const dv = new DataView(attr);
    dv.setUint32(0, PERF_TYPE_SOFTWARE, true);
    dv.setUint32(4, 64, true);
    dv.setBigUint64(8, BigInt(PERF_COUNT_SW_BPF_OUTPUT), true);
    dv.setBigUint64(16, 1n, true); // sample_period
    dv.setBigUint64(24, BigInt(PERF_SAMPLE_RAW), true);
    if (wake === "half") {
      dv.setBigUint64(40, ATTR_FLAG_WATERMARK, true);
      dv.setUint32(48, (pages * page) / 2, true); // wakeup_watermark: see signalWhenHalfFull
    } else {
      dv.setUint32(48, 1, true); // wakeup_events
    }
    // Left to itself libbpf opens the online CPUs and packs their buffers
    // with no gaps, so buffer index and CPU part ways once a CPU is offline.
    // Naming the CPUs (map key = CPU) makes buffer i that of cpuIds[i].
    const cpuIds = parseCpuIds(readFileSync("/sys/devices/system/cpu/online", "utf8")).filter((c) => c < cpus);
    if (cpuIds.length === 0) throw new Error("no online CPU to open a perf buffer on");
    const ids = new Int32Array(cpuIds);
    // struct perf_buffer_raw_opts: size_t sz; int cpu_cnt; int *cpus; int *map_keys.
    const opts = new BigUint64Array(4);
    opts[0] = BigInt(opts.byteLength);
    opts[1] = BigInt(ids.length);
    opts[2] = BigInt(ptr(ids));
    opts[3] = BigInt(ptr(ids));
    // The event callback may be NULL: libbpf only calls it from its consume
    // path, which this reader never takes.
    const pb = libbpf().perf_buffer__new_raw(mapFd, BigInt(pages), ptr(new Uint8Array(attr)), null, null, ptr(opts));
    this.pb = checkPtr("perf_buffer__new_raw", pb, `${pages} pages per CPU`);
    try {
      const n = Number(libbpf().perf_buffer__buffer_cnt(this.pb));
      if (n !== ids.length) throw new Error(`perf_buffer opened ${n} buffers for ${ids.length} CPUs`);
      const out = new BigUint64Array(2);
      for (let i = 0; i < n; i++) {
        checkInt("perf_buffer__buffer", libbpf().perf_buffer__buffer(this.pb, i, ptr(out), ptr(out, 8)));
        this.rings.push(this.mapRing(out, cpuIds[i]!, page, pages * page));
      }
      this.pending = new Array<boolean>(Math.max(...cpuIds) + 1).fill(false);
      this.heads = this.rings.map(() => 0n);
      this.got = this.rings.map(() => 0);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** perf_buffer__buffer gives the header page's address and the data area's size (the mapping is both). */
  private mapRing(out: BigUint64Array, cpu: number, page: number, expected: number): CpuRing {
    const base = asPtr(Number(out[0]!) as Pointer);
    const size = Number(out[1]!);
    if (base === null || size !== expected)
      throw new Error(`perf buffer of CPU ${cpu}: ${size} bytes, not ${expected}`);
    const mem = toArrayBuffer(base, 0, page + size);
    const ctl = new BigUint64Array(mem, MMAP_PAGE_FIELDS, 4);
    // Kernels since 4.1 say where the data is; it must be where libbpf assumed.
    if (ctl[DATA_OFFSET] !== 0n && (ctl[DATA_OFFSET] !== BigInt(page) || ctl[DATA_SIZE] !== BigInt(size))) {
      throw new Error(`perf buffer of CPU ${cpu}: data at ${ctl[DATA_OFFSET]}+${ctl[DATA_SIZE]}, not ${page}+${size}`);
    }
    return { cpu, ctl, data: new Uint8Array(mem, page, size) };
  }

  consume(rounds: Rounds = WHOLE): number {
    return this.consumeInRounds(rounds);
  }

  /**
   * consume(rounds) over synthetic rings instead of the kernel's (at most one
   * per CPU buffer, each read as the buffer of that CPU): the agent's warm-up
   * runs the drain's own code on records shaped like a storm's, so the JIT
   * has compiled it, for these values, before a storm does.
   */
  replay(rings: readonly SyntheticRing[], rounds: Rounds): number {
    const real = this.rings;
    this.rings = rings.slice(0, real.length).map((r, i): CpuRing => {
      const ctl = new BigUint64Array(4);
      ctl[HEAD] = r.head;
      ctl[TAIL] = r.tail;
      return { cpu: real[i]!.cpu, ctl, data: r.data };
    });
    try {
      return this.consumeInRounds(rounds);
    } finally {
      this.rings = real;
    }
  }

  /**
   * Up to each ring's head as it is now, `rounds.bytes` a ring a turn: what
   * one turn hands out can still be in the CPU's caches when `after` passes
   * it on, where a whole drain's lines (megabytes in a storm) were not.
   */
  private consumeInRounds(rounds: Rounds): number {
    const { rings, pending, heads, got } = this;
    let left = 0;
    for (let i = 0; i < rings.length; i++) {
      const r = rings[i]!;
      heads[i] = Atomics.load(r.ctl, HEAD);
      got[i] = 0;
      pending[r.cpu] = heads[i] !== r.ctl[TAIL]!;
      if (pending[r.cpu]) left++;
    }
    do {
      for (let i = 0; i < rings.length; i++) {
        const r = rings[i]!;
        if (!pending[r.cpu]) continue;
        got[i]! += this.read(r, heads[i]!, rounds.bytes);
        if (r.ctl[TAIL] === heads[i]) {
          pending[r.cpu] = false;
          left--;
        }
      }
      rounds.after(pending);
    } while (left > 0);
    let fill = 0;
    for (let i = 0; i < rings.length; i++) fill = Math.max(fill, got[i]! / rings[i]!.data.length);
    return fill;
  }

  /** Hands out a ring's records from its tail towards `head`, about `budget` bytes; returns the payload bytes. */
  private read(r: CpuRing, head: bigint, budget: number): number {
    const tail = r.ctl[TAIL]!;
    const f = this.framed;
    let next = tail;
    try {
      next = framePerf(r.data, head, tail, this.onRecord, this.scratch, f, budget).tail;
    } catch (e) {
      // A handler that threw still consumed the records before it, and its own.
      next = tail + BigInt(f.consumed);
      throw e;
    } finally {
      // Release: the kernel may reuse the space only once we are done with it.
      Atomics.store(r.ctl, TAIL, next);
      this.lostPerCpu[r.cpu]! += f.lost;
      this.malformedRecords += f.bad;
    }
    return f.bytes;
  }

  lostByCpu(): number[] {
    return [...this.lostPerCpu];
  }

  lost(): number {
    return this.lostPerCpu.reduce((a, b) => a + b, 0);
  }

  badRecords(): number {
    return this.malformedRecords;
  }

  /**
   * The watermark set above then raises SIGIO: each time another half ring
   * has been written since the last wake-up, so at the latest when a ring is
   * half full. A burst that comes while the agent waits out a long idle period
   * is drained at once; below the watermark the kernel wakes no one, so a
   * steady stream still costs the traced processes no wake-up per event.
   * Only from 6.10 on: before, a watermark wake-up woke pollers but sent no
   * signal (perf/ring_buffer: "Trigger IO signals for watermark_wakeup"), and
   * a back-off that relied on it would lose the start of a burst.
   */
  signalWhenHalfFull(): boolean {
    if (this.pb === null || !perfOutputSignals()) return false;
    this.signalling = true;
    for (let i = 0; i < this.rings.length; i++) {
      const fd = libbpf().perf_buffer__buffer_fd(this.pb, BigInt(i));
      if (fd < 0 || !signalWhenReady(fd)) return false;
    }
    return true;
  }

  close(): void {
    // The views go first: after the unmap they would point at nothing.
    const n = this.rings.length;
    this.rings = [];
    if (this.pb !== null) {
      // No SIGIO once closed, even while the kernel still holds the events: the caller stops listening.
      if (this.signalling) for (let i = 0; i < n; i++) stopSignals(libbpf().perf_buffer__buffer_fd(this.pb, BigInt(i)));
      this.signalling = false;
      libbpf().perf_buffer__free(this.pb);
      this.pb = null;
    }
  }
}
