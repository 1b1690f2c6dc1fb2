/**
 * BPF ring buffer reader (one ring shared by all CPUs). Drops happen in the
 * kernel, where bpf_ringbuf_reserve/output fail; the BPF side counts them in
 * ds_counters.output_fail, so lost() here is always 0 and the agent reports
 * those counters instead.
 */
import { FFIType, JSCallback, type Pointer } from "bun:ffi";
import { checkPtr, LibbpfError, libbpf } from "../ffi/libbpf.ts";
import type { EventSource, SampleHandler } from "./source.ts";
import { Staging } from "./staging.ts";

export class RingReader implements EventSource {
  private rb: Pointer | null;
  private readonly cb: JSCallback;
  private oversized = 0;

  constructor(mapFd: number, onSample: SampleHandler) {
    const staging = new Staging();
    this.cb = new JSCallback(
      (_ctx: Pointer, data: Pointer, size: number | bigint): number => {
        const bytes = staging.copy(data, 0, Number(size));
        // The header carries the CPU; -1 says "read it from the event".
        if (bytes === null) this.oversized++;
        else onSample(-1, bytes);
        return 0;
      },
      { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
    );
    try {
      this.rb = checkPtr("ring_buffer__new", libbpf().ring_buffer__new(mapFd, this.cb.ptr, null, null));
    } catch (e) {
      this.cb.close();
      throw e;
    }
  }

  consume(): void {
    if (this.rb === null) return;
    const r = libbpf().ring_buffer__consume(this.rb);
    if (r < 0 && r !== -4) throw new LibbpfError("ring_buffer__consume", -r);
  }

  lost(): number {
    return 0;
  }

  lostByCpu(): number[] {
    return [];
  }

  badRecords(): number {
    return this.oversized;
  }

  close(): void {
    if (this.rb !== null) {
      libbpf().ring_buffer__free(this.rb);
      this.rb = null;
      this.cb.close();
    }
  }
}
