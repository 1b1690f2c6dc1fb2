/**
 * Typed bun:ffi bindings for exactly the libbpf calls dual-slot makes.
 *
 * libbpf 1.x reports errors two ways: calls returning a pointer give NULL and set
 * errno; calls returning int give -errno. `check*` turn both into a LibbpfError
 * that names the call, so a user sees which step failed and why.
 */
import { dlopen, FFIType, type Pointer } from "bun:ffi";
import { errno, errnoText } from "./libc.ts";

const { ptr: P, i32, u32, u64, cstring, void: V, bool } = FFIType;

const SYMBOLS = {
  libbpf_major_version: { args: [], returns: u32 },
  libbpf_minor_version: { args: [], returns: u32 },
  libbpf_set_print: { args: [P], returns: P },
  libbpf_num_possible_cpus: { args: [], returns: i32 },
  libbpf_probe_bpf_prog_type: { args: [i32, P], returns: i32 },
  libbpf_probe_bpf_map_type: { args: [i32, P], returns: i32 },
  bpf_object__open_mem: { args: [P, u64, P], returns: P },
  bpf_object__load: { args: [P], returns: i32 },
  bpf_object__close: { args: [P], returns: V },
  bpf_object__find_program_by_name: { args: [P, cstring], returns: P },
  bpf_object__find_map_by_name: { args: [P, cstring], returns: P },
  bpf_object__next_map: { args: [P, P], returns: P },
  bpf_program__set_autoload: { args: [P, bool], returns: i32 },
  bpf_program__attach: { args: [P], returns: P },
  bpf_program__fd: { args: [P], returns: i32 },
  bpf_link__destroy: { args: [P], returns: i32 },
  bpf_map__name: { args: [P], returns: cstring },
  bpf_map__fd: { args: [P], returns: i32 },
  bpf_map__set_max_entries: { args: [P, u32], returns: i32 },
  bpf_map__initial_value: { args: [P, P], returns: P },
  bpf_map__set_initial_value: { args: [P, P, u64], returns: i32 },
  perf_buffer__new: { args: [i32, u64, P, P, P, P], returns: P },
  perf_buffer__new_raw: { args: [i32, u64, P, P, P, P], returns: P },
  perf_buffer__consume: { args: [P], returns: i32 },
  perf_buffer__free: { args: [P], returns: V },
  ring_buffer__new: { args: [i32, P, P, P], returns: P },
  ring_buffer__consume: { args: [P], returns: i32 },
  ring_buffer__free: { args: [P], returns: V },
  bpf_obj_get_info_by_fd: { args: [i32, P, P], returns: i32 },
  bpf_map_get_next_id: { args: [u32, P], returns: i32 },
  bpf_map_get_fd_by_id: { args: [u32], returns: i32 },
  bpf_prog_get_next_id: { args: [u32, P], returns: i32 },
  bpf_prog_get_fd_by_id: { args: [u32], returns: i32 },
  bpf_map_lookup_elem: { args: [i32, P, P], returns: i32 },
  bpf_map_update_elem: { args: [i32, P, P, u64], returns: i32 },
  bpf_enable_stats: { args: [i32], returns: i32 },
} as const;

function open(path: string) {
  return dlopen(path, SYMBOLS).symbols;
}

export type Libbpf = ReturnType<typeof open>;

export class LibbpfError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    detail?: string,
  ) {
    super(`${call} failed: ${errnoText(errno)}${detail ? ` (${detail})` : ""}`);
    this.name = "LibbpfError";
  }
}

let lib: Libbpf | undefined;
let libPath = "";

/** Opens libbpf once, from the path the caller resolved (embedded memfd or system). */
export function loadLibbpf(path: string): Libbpf {
  if (lib === undefined) {
    lib = open(path);
    libPath = path;
  }
  return lib;
}

export function libbpf(): Libbpf {
  if (lib === undefined) throw new Error("libbpf is not loaded yet");
  return lib;
}

export function libbpfVersion(): string {
  const l = libbpf();
  return `${l.libbpf_major_version()}.${l.libbpf_minor_version()}`;
}

export const loadedLibbpfPath = (): string => libPath;

/** int-returning libbpf calls: negative is -errno. */
export function checkInt(call: string, ret: number, detail?: string): number {
  if (ret < 0) throw new LibbpfError(call, -ret, detail);
  return ret;
}

/** Pointer-returning libbpf calls: NULL with errno set. */
export function checkPtr(call: string, ret: Pointer | null, detail?: string): Pointer {
  if (ret === null) throw new LibbpfError(call, errno() || 22, detail);
  return ret;
}
