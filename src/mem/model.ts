/**
 * What the kernel charges for each kind of map this agent creates, as
 * arithmetic. `dual-slot mem` prints the kernel's own figure (memlock in
 * /proc/self/fdinfo) next to this model, so a disagreement shows up instead of
 * hiding behind a formula.
 *
 * The model follows the kernel's map_mem_usage callbacks (the source of the
 * fdinfo memlock line since 6.4):
 *
 *   array_map_mem_usage (kernel/bpf/arraymap.c), elem = round_up(value_size, 8):
 *     percpu array   sizeof(struct bpf_array) + n * 8 + n * elem * possible_cpus
 *                    (8 = one per-CPU pointer per entry, kept in the array itself)
 *     fd array       sizeof(struct bpf_array) + n * elem  (perf event array: elem 8)
 *     mmapable array PAGE_ALIGN(sizeof(struct bpf_array)) + PAGE_ALIGN(n * elem)
 *                    (libbpf makes .rodata/.bss mmapable, so each costs two pages)
 *   ringbuf_map_mem_usage (kernel/bpf/ringbuf.c), d = data pages, m = meta pages:
 *     sizeof(struct bpf_ringbuf_map) + (m + d) pages + (m + 2d) * 8
 *     (data pages are mapped twice so a record can wrap without a copy; each
 *     mapping needs a struct page pointer)
 *   htab_map_mem_usage (kernel/bpf/hashtab.c), an LRU hash (always preallocated):
 *     sizeof(struct bpf_htab) + roundup_pow_of_two(n) * sizeof(struct bucket)
 *     + possible_cpus * 8 locks * 4 + n * (sizeof(struct htab_elem) + key + value)
 *     (key and value rounded up to 8; a plain preallocated hash also keeps one
 *     extra element and one pointer per CPU, an LRU neither)
 *   bpf_local_storage_map_mem_usage (kernel/bpf/bpf_local_storage.c), task storage:
 *     sizeof(struct bpf_local_storage_map)
 *     + max(2, roundup_pow_of_two(possible_cpus)) * sizeof(struct bpf_local_storage_map_bucket)
 *     (the elements, one per thread that made a stashed syscall, live in the
 *     tasks and are not counted: the kernel's own figure leaves them out too)
 *
 * Struct sizes differ between kernel builds, so they come from the running
 * kernel's BTF (see src/ebpf/host-facts.ts), never from constants.
 */

export const MapType = {
  hash: 1,
  array: 2,
  prog_array: 3,
  perf_event_array: 4,
  percpu_array: 6,
  lru_hash: 9,
  ringbuf: 27,
  task_storage: 29,
} as const;

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MapType).map(([k, v]) => [v, k]));

export function mapTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}

const BPF_F_MMAPABLE = 1 << 10;
const BPF_F_NO_PREALLOC = 1;
const POINTER = 8;

/** Sizes from the running kernel that the accounting depends on. */
export interface KernelSizes {
  /** sizeof(struct bpf_array) */
  bpfArray: number;
  /** sizeof(struct bpf_ringbuf_map) */
  ringbufMap: number;
  /** offsetof(struct bpf_ringbuf, data) / page size: consumer, producer and header pages. */
  ringbufMetaPages: number;
  pageSize: number;
  /** sizeof(struct bpf_htab), sizeof(struct htab_elem), sizeof(struct bucket) */
  htab: number;
  htabElem: number;
  htabBucket: number;
  /** sizeof(struct bpf_local_storage_map), sizeof(struct bpf_local_storage_map_bucket) */
  localStorageMap: number;
  localStorageBucket: number;
}

export interface MapShape {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** The kernel's memlock figure for one map, or null for a kind this model does not cover. */
export function expectedMemlock(m: MapShape, k: KernelSizes, possibleCpus: number): number | null {
  const elem = roundUp(m.valueSize, 8);
  const n = m.maxEntries;
  switch (m.type) {
    case MapType.percpu_array:
      return k.bpfArray + n * POINTER + n * elem * possibleCpus;
    case MapType.array:
      if (m.flags & BPF_F_MMAPABLE) return roundUp(k.bpfArray, k.pageSize) + roundUp(n * elem, k.pageSize);
      return k.bpfArray + n * elem;
    // fd arrays: one pointer per entry (the 4-byte value is an fd only at the syscall boundary).
    case MapType.prog_array:
    case MapType.perf_event_array:
      return k.bpfArray + n * elem;
    case MapType.lru_hash:
    case MapType.hash: {
      // Only preallocated hashes are modelled (the filter maps, like every hash here, are).
      if (m.flags & BPF_F_NO_PREALLOC) return null;
      const HASHTAB_MAP_LOCK_COUNT = 8;
      const buckets = 2 ** Math.ceil(Math.log2(Math.max(1, n)));
      const elemSize = k.htabElem + roundUp(m.keySize, 8) + elem;
      const base = k.htab + buckets * k.htabBucket + 4 * possibleCpus * HASHTAB_MAP_LOCK_COUNT;
      if (m.type === MapType.lru_hash) return base + n * elemSize;
      return base + (n + possibleCpus) * elemSize + possibleCpus * POINTER;
    }
    case MapType.task_storage: {
      const buckets = Math.max(2, 2 ** Math.ceil(Math.log2(Math.max(1, possibleCpus))));
      return k.localStorageMap + buckets * k.localStorageBucket;
    }
    case MapType.ringbuf: {
      const data = Math.floor(n / k.pageSize);
      const meta = k.ringbufMetaPages;
      return k.ringbufMap + (meta + data) * k.pageSize + (meta + 2 * data) * POINTER;
    }
    default:
      return null;
  }
}

/**
 * The per-CPU heap itself, without bookkeeping: every slot exists once per
 * possible CPU (not online: the kernel allocates for CPUs that may be
 * hot-plugged later).
 */
export const scratchBytes = (cpus: number, slots: number, valueSize: number): number => cpus * slots * valueSize;

/** What the kernel adds to the heap: the bpf_array header and one per-CPU pointer per slot. */
export const scratchOverhead = (slots: number, k: Pick<KernelSizes, "bpfArray">): number =>
  k.bpfArray + slots * POINTER;

/** A perf buffer maps one header page plus the data pages on each CPU libbpf opens it for. */
export const perfBufferBytes = (cpus: number, pages: number, pageSize: number): number => cpus * (pages + 1) * pageSize;

export type EventTransport = { kind: "perf"; pages: number } | { kind: "ring"; bytes: number };

/** Event buffer memory for a host of `cpus` CPUs: perf grows with CPUs, the ring does not. */
export function eventBytes(t: EventTransport, cpus: number, pageSize: number): number {
  return t.kind === "perf" ? perfBufferBytes(cpus, t.pages, pageSize) : t.bytes;
}

export const PROJECTION_CPUS: readonly number[] = [2, 8, 32, 64, 128, 256];
export const PROJECTION_SLOTS: readonly number[] = [1, 2, 3];

export interface ProjectionRow {
  cpus: number;
  /** Scratch map bytes for 1, 2 and 3 slots. */
  scratch: number[];
  events: number;
  /** Scratch for the chosen slot count plus the event buffers. */
  total: number;
  thisHost: boolean;
}

/** The projection table; this host's CPU count is added as its own row when the list lacks it. */
export function projection(opts: {
  hostCpus: number;
  slots: number;
  valueSize: number;
  transport: EventTransport;
  pageSize: number;
  cpus?: readonly number[];
}): ProjectionRow[] {
  const list = [...new Set([...(opts.cpus ?? PROJECTION_CPUS), opts.hostCpus])].sort((a, b) => a - b);
  return list.map((cpus) => {
    const scratch = PROJECTION_SLOTS.map((s) => scratchBytes(cpus, s, opts.valueSize));
    const events = eventBytes(opts.transport, cpus, opts.pageSize);
    return {
      cpus,
      scratch,
      events,
      total: scratchBytes(cpus, opts.slots, opts.valueSize) + events,
      thisHost: cpus === opts.hostCpus,
    };
  });
}

/** The line under the projection that says where the numbers come from. */
export function formulaText(valueSize: number, k: KernelSizes | null): string {
  const overhead =
    k === null
      ? ""
      : ` The kernel adds sizeof(struct bpf_array) = ${k.bpfArray} B plus 8 B per slot (its per-CPU pointers), once per map.`;
  return (
    `g_percpu_data = possible CPUs x slots x ${valueSize} B: a BPF_MAP_TYPE_PERCPU_ARRAY allocates every entry once per possible CPU ` +
    `(kernel/bpf/arraymap.c: array_map_alloc -> bpf_map_alloc_percpu), and each slot is one ${valueSize}-byte SD_EVENT_MAX buffer ` +
    `(Elkeid's struct sd_percpu_data).${overhead} Perf buffers: CPUs x (pages + 1 header page) x page size; a ring buffer is one buffer for all CPUs.`
  );
}
