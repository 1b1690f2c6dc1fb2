/**
 * Per-CPU perf buffer reader, in the spirit of cilium/ebpf's perf.Reader: it
 * hands out samples with their CPU and counts lost records per CPU.
 *
 * Built with perf_buffer__new_raw so the kernel wakes no one per event: the
 * agent drains on a timer, so a per-sample wakeup (libbpf's default
 * wakeup_events = 1) would only cost the traced processes an irq_work each.
 */
import { FFIType, JSCallback, type Pointer, ptr, read } from "bun:ffi";
import { checkPtr, LibbpfError, libbpf } from "../ffi/libbpf.ts";
import { pageSize } from "../ffi/libc.ts";
import type { EventSource, SampleHandler } from "./source.ts";
import { Staging } from "./staging.ts";

const PERF_TYPE_SOFTWARE = 1;
const PERF_COUNT_SW_BPF_OUTPUT = 10;
const PERF_SAMPLE_RAW = 1 << 10;
const ATTR_FLAG_WATERMARK = 1n << 14n;
const PERF_RECORD_LOST = 2;
const PERF_RECORD_SAMPLE = 9;
const LIBBPF_PERF_EVENT_CONT = -2;

export class PerfReader implements EventSource {
  private pb: Pointer | null = null;
  private readonly cb: JSCallback;
  private readonly lostPerCpu: number[] = [];
  private malformedRecords = 0;

  constructor(mapFd: number, pages: number, onSample: SampleHandler, cpus: number) {
    for (let i = 0; i < cpus; i++) this.lostPerCpu.push(0);
    // struct perf_event_attr, PERF_ATTR_SIZE_VER0 (64 bytes) is all we set.
    const attr = new ArrayBuffer(64);
    const dv = new DataView(attr);
    dv.setUint32(0, PERF_TYPE_SOFTWARE, true);
    dv.setUint32(4, 64, true);
    dv.setBigUint64(8, BigInt(PERF_COUNT_SW_BPF_OUTPUT), true);
    dv.setBigUint64(16, 1n, true); // sample_period
    dv.setBigUint64(24, BigInt(PERF_SAMPLE_RAW), true);
    dv.setBigUint64(40, ATTR_FLAG_WATERMARK, true);
    dv.setUint32(48, (pages * pageSize()) / 2, true); // wakeup_watermark: only if someone ever polls
    const staging = new Staging();
    this.cb = new JSCallback(
      (_ctx: Pointer, cpu: number, rec: Pointer): number => {
        const type = read.u32(rec, 0);
        const size = read.u16(rec, 6);
        if (type === PERF_RECORD_SAMPLE) {
          const raw = size >= 12 ? read.u32(rec, 8) : Number.MAX_SAFE_INTEGER;
          const data = raw > size - 12 ? null : staging.copy(rec, 12, raw);
          if (data === null) this.malformedRecords++;
          else onSample(cpu, data);
        } else if (type === PERF_RECORD_LOST && size >= 24) {
          const n = Number(read.u64(rec, 16));
          if (cpu >= 0 && cpu < this.lostPerCpu.length) this.lostPerCpu[cpu]! += n;
          else this.lostPerCpu[0]! += n;
        }
        return LIBBPF_PERF_EVENT_CONT;
      },
      { args: [FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    );
    try {
      const pb = libbpf().perf_buffer__new_raw(
        mapFd,
        BigInt(pages),
        ptr(new Uint8Array(attr)),
        this.cb.ptr,
        null,
        null,
      );
      this.pb = checkPtr("perf_buffer__new_raw", pb, `${pages} pages per CPU`);
    } catch (e) {
      this.cb.close();
      throw e;
    }
  }

  consume(): void {
    if (this.pb === null) return;
    const r = libbpf().perf_buffer__consume(this.pb);
    if (r < 0 && r !== -4) throw new LibbpfError("perf_buffer__consume", -r);
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

  close(): void {
    if (this.pb !== null) {
      libbpf().perf_buffer__free(this.pb);
      this.pb = null;
      this.cb.close();
    }
  }
}
