import { ptr } from "bun:ffi";
import { checkInt, libbpf } from "../ffi/libbpf.ts";
import { ds_counters } from "../wire/layout.gen.ts";

/**
 * ds_counters' output_fail on every CPU, into buffers kept for it: the drain
 * reads it every time (readCounters() builds every counter of every CPU as
 * objects, about 0.2 ms a drain in an idle agent, where nothing is compiled).
 */
export class OutputFails {
  private readonly key = new Uint32Array(1);
  private readonly stride = Math.ceil(ds_counters.size / 8) * 8;
  private readonly values: Uint32Array;

  constructor(
    private readonly fd: number,
    cpus: number,
  ) {
    this.values = new Uint32Array((this.stride / 4) * cpus);
  }

  read(): void {
    checkInt(
      "bpf_map_lookup_elem",
      libbpf().bpf_map_lookup_elem(this.fd, ptr(this.key), ptr(this.values)),
      "ds_counters",
    );
  }

  /** The last read()'s count for `cpu` (u64, exact below 2^53). */
  at(cpu: number): number {
    const i = (cpu * this.stride + ds_counters.off.output_fail) / 4;
    return (this.values[i + 1] ?? 0) * 4294967296 + (this.values[i] ?? 0);
  }
}
