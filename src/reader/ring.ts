/**
 * BPF ring buffer reader (one ring shared by all CPUs), in the spirit of
 * cilium/ebpf's ringbuf.Reader: the map is mmapped here and records are read
 * where they lie, with no call into C per record.
 *
 * Drops happen in the kernel, where bpf_ringbuf_reserve/output fail; the BPF
 * side counts them in ds_counters.output_fail, so lost() here is always 0 and
 * the agent reports those counters instead.
 */
import { type Pointer, toArrayBuffer } from "bun:ffi";
import { mapInfo } from "../ebpf/info.ts";
import { errno, errnoText, mmap, munmap, pageSize } from "../ffi/libc.ts";
import { log } from "../log.ts";
import { acquireFence, type Framed, frameRingbuf, PERF_RECORD_MAX, type RecordHandler } from "./framing.ts";
import { PerfReader } from "./perf.ts";
import type { EventSource } from "./source.ts";

const BPF_MAP_TYPE_RINGBUF = 27;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;

interface Mapping {
  at: Pointer;
  length: number;
}

function map(fd: number, length: number, prot: number, offset: number, what: string): Mapping {
  const at = mmap(null, length, prot, MAP_SHARED, fd, offset);
  if (at === null) throw new Error(`mmap of the ring buffer's ${what} failed: ${errnoText(errno())}`);
  return { at, length };
}

/**
 * The doorbell's perf buffers, one page per CPU. Without them the run goes
 * on, drained on the timer alone (every --interval): a doorbell is a saving,
 * not a condition of the run.
 */
export function openBell(
  mapFd: number,
  cpus: number,
  warn: (message: string) => void = (m) => log.warn(m),
): PerfReader | null {
  try {
    return new PerfReader(mapFd, 1, () => {}, cpus, "each");
  } catch (e) {
    warn(`ring buffer: no doorbell (${(e as Error).message}); draining every --interval instead`);
    return null;
  }
}

export class RingReader implements EventSource {
  private readonly maps: Mapping[] = [];
  /** consumer_pos, the one word we write. */
  private consumerPos: BigUint64Array | null = null;
  private producerPos: BigUint64Array | null = null;
  /** The data area, mapped once (see frameRingbuf). Read-only: no Atomics on it (see acquireFence). */
  private data: Uint8Array | null = null;
  /** Where a record that wraps past the data area's end is put together. */
  private readonly scratch = new Uint8Array(PERF_RECORD_MAX);
  private unframed = 0;
  private readonly framed: Framed = { tail: 0n, consumed: 0, records: 0, bytes: 0, lost: 0, bad: 0 };

  /** The programs' doorbell (ds_bell, bpf/transport.bpf.h): its samples only say "drain now". */
  private bell: PerfReader | null = null;

  /**
   * `bell`: the doorbell map the programs ring once the ring is half full,
   * and the possible CPUs (absent: the programs ring none).
   */
  constructor(
    mapFd: number,
    private readonly onRecord: RecordHandler,
    bell?: { mapFd: number; cpus: number },
  ) {
    const info = mapInfo(mapFd);
    const page = pageSize();
    const size = info.maxEntries;
    if (info.type !== BPF_MAP_TYPE_RINGBUF) throw new Error(`map '${info.name}' is not a ring buffer`);
    // The kernel's own rule for a ring buffer's size.
    if (size < page || (size & (size - 1)) !== 0) throw new Error(`ring buffer of ${size} bytes`);
    try {
      // Page 0: consumer_pos, ours to write. Page 1: producer_pos, then the data, which the kernel
      // offers twice in a row; the first copy is enough (see frameRingbuf).
      const cons = map(mapFd, page, PROT_READ | PROT_WRITE, 0, "consumer page");
      this.maps.push(cons);
      const prod = map(mapFd, page + size, PROT_READ, page, "producer page and data");
      this.maps.push(prod);
      this.consumerPos = new BigUint64Array(toArrayBuffer(cons.at, 0, page), 0, 1);
      const mem = toArrayBuffer(prod.at, 0, prod.length);
      this.producerPos = new BigUint64Array(mem, 0, 1);
      this.data = new Uint8Array(mem, page, size);
      if (bell !== undefined) this.bell = openBell(bell.mapFd, bell.cpus);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  consume(): number {
    const cons = this.consumerPos;
    const prodPos = this.producerPos;
    const data = this.data;
    if (cons === null || prodPos === null || data === null) return 0;
    this.bell?.consume(); // before the ring: a ring after this read is for records after it
    // Acquire: every record up to producer_pos is reserved (maybe still BUSY).
    const producer = prodPos[0]!;
    acquireFence();
    const consumer = cons[0]!;
    if (producer === consumer) return 0;
    const f = this.framed;
    let next = consumer;
    try {
      next = frameRingbuf(data, producer, consumer, this.onRecord, this.scratch, f).tail;
    } catch (e) {
      // A handler that threw still consumed the records before it, and its own.
      next = consumer + BigInt(f.consumed);
      throw e;
    } finally {
      // Release: the kernel may reuse the space only once we are done with it.
      Atomics.store(cons, 0, next);
      this.unframed += f.bad;
    }
    return f.bytes / data.length;
  }

  lost(): number {
    return 0;
  }

  lostByCpu(): number[] {
    return [];
  }

  badRecords(): number {
    return this.unframed;
  }

  /**
   * A BPF ring buffer's fd can be polled but raises no SIGIO; its doorbell,
   * a perf event array, does (6.10+): the programs ring it once the ring is
   * half full. Without one the agent drains on the timer alone.
   */
  signalWhenHalfFull(): boolean {
    return this.bell?.signalWhenHalfFull() ?? false;
  }

  close(): void {
    this.bell?.close();
    this.bell = null;
    // The views go first: after the unmap they would point at nothing.
    this.consumerPos = null;
    this.producerPos = null;
    this.data = null;
    for (const m of this.maps.splice(0)) munmap(m.at, m.length);
  }
}
