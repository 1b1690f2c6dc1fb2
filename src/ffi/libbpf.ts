/**
 * Typed bun:ffi bindings for exactly the libbpf calls dual-slot makes.
 *
 * libbpf 1.x reports errors two ways: calls returning a pointer give NULL and set
 * errno; calls returning int give -errno. `check*` turn both into a LibbpfError
 * that names the call, so a user sees which step failed and why.
 */
import { dlopen, type Pointer } from "bun:ffi";
import { errno, errnoText, libc } from "./libc.ts";

const SYMBOLS = {
  libbpf_major_version: { args: [], returns: "u32" },
  libbpf_minor_version: { args: [], returns: "u32" },
  libbpf_set_print: { args: ["ptr"], returns: "ptr" },
  libbpf_num_possible_cpus: { args: [], returns: "i32" },
  libbpf_probe_bpf_prog_type: { args: ["i32", "ptr"], returns: "i32" },
  libbpf_probe_bpf_map_type: { args: ["i32", "ptr"], returns: "i32" },
  libbpf_probe_bpf_helper: { args: ["i32", "i32", "ptr"], returns: "i32" },
  bpf_object__open_mem: { args: ["ptr", "u64", "ptr"], returns: "ptr" },
  bpf_object__load: { args: ["ptr"], returns: "i32" },
  bpf_object__close: { args: ["ptr"], returns: "void" },
  bpf_object__find_program_by_name: { args: ["ptr", "cstring"], returns: "ptr" },
  bpf_object__find_map_by_name: { args: ["ptr", "cstring"], returns: "ptr" },
  bpf_object__next_map: { args: ["ptr", "ptr"], returns: "ptr" },
  bpf_program__set_autoload: { args: ["ptr", "bool"], returns: "i32" },
  bpf_program__insn_cnt: { args: ["ptr"], returns: "u64" },
  bpf_program__attach: { args: ["ptr"], returns: "ptr" },
  bpf_program__attach_tracepoint: { args: ["ptr", "cstring", "cstring"], returns: "ptr" },
  bpf_program__section_name: { args: ["ptr"], returns: "cstring" },
  bpf_program__fd: { args: ["ptr"], returns: "i32" },
  bpf_link__destroy: { args: ["ptr"], returns: "i32" },
  bpf_map__name: { args: ["ptr"], returns: "cstring" },
  bpf_map__fd: { args: ["ptr"], returns: "i32" },
  bpf_map__set_max_entries: { args: ["ptr", "u32"], returns: "i32" },
  bpf_map__reuse_fd: { args: ["ptr", "i32"], returns: "i32" },
  bpf_map__initial_value: { args: ["ptr", "ptr"], returns: "ptr" },
  perf_buffer__new_raw: { args: ["i32", "u64", "ptr", "ptr", "ptr", "ptr"], returns: "ptr" },
  perf_buffer__consume: { args: ["ptr"], returns: "i32" },
  perf_buffer__free: { args: ["ptr"], returns: "void" },
  ring_buffer__new: { args: ["i32", "ptr", "ptr", "ptr"], returns: "ptr" },
  ring_buffer__consume: { args: ["ptr"], returns: "i32" },
  ring_buffer__free: { args: ["ptr"], returns: "void" },
  perf_buffer__buffer_cnt: { args: ["ptr"], returns: "u64" },
  perf_buffer__buffer: { args: ["ptr", "i32", "ptr", "ptr"], returns: "i32" },
  perf_buffer__buffer_fd: { args: ["ptr", "u64"], returns: "i32" },
  bpf_map__value_size: { args: ["ptr"], returns: "u32" },
  btf__load_vmlinux_btf: { args: [], returns: "ptr" },
  btf__load_from_kernel_by_id: { args: ["u32"], returns: "ptr" },
  btf__find_by_name_kind: { args: ["ptr", "cstring", "u32"], returns: "i32" },
  btf__resolve_size: { args: ["ptr", "u32"], returns: "i64" },
  btf__free: { args: ["ptr"], returns: "void" },
  btf__type_by_id: { args: ["ptr", "u32"], returns: "ptr" },
  btf__name_by_offset: { args: ["ptr", "u32"], returns: "cstring" },
  bpf_obj_get_info_by_fd: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  bpf_map_get_next_id: { args: ["u32", "ptr"], returns: "i32" },
  bpf_map_get_fd_by_id: { args: ["u32"], returns: "i32" },
  bpf_prog_get_next_id: { args: ["u32", "ptr"], returns: "i32" },
  bpf_prog_get_fd_by_id: { args: ["u32"], returns: "i32" },
  bpf_link_get_next_id: { args: ["u32", "ptr"], returns: "i32" },
  bpf_link_get_fd_by_id: { args: ["u32"], returns: "i32" },
  bpf_map_lookup_elem: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  bpf_map_update_elem: { args: ["i32", "ptr", "ptr", "u64"], returns: "i32" },
  bpf_map_delete_elem: { args: ["i32", "ptr"], returns: "i32" },
  bpf_enable_stats: { args: ["i32"], returns: "i32" },
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

/** Opens libbpf once, from the path the caller resolved (embedded memfd or system). */
export function loadLibbpf(path: string): Libbpf {
  if (lib === undefined) {
    // libc first: errno() after a failed libbpf call must not be the first
    // use of libc, whose dlopen could overwrite the errno being read.
    libc();
    lib = open(path);
  }
  return lib;
}

export function libbpf(): Libbpf {
  if (lib === undefined) throw new Error("libbpf is not loaded yet");
  return lib;
}

/** The address of a bound libbpf function, to hand to C (a thread's start routine). */
export function functionAddress(name: keyof typeof SYMBOLS): Pointer {
  const address = (libbpf()[name] as unknown as { ptr?: unknown }).ptr;
  if (typeof address !== "number" || address === 0) throw new Error(`no address for libbpf's ${name}`);
  return address as Pointer;
}

/** int-returning libbpf calls: negative is -errno. */
export function checkInt(call: string, ret: number, detail?: string): number {
  if (ret < 0) throw new LibbpfError(call, -ret, detail);
  return ret;
}

/** bun:ffi types a returned pointer as number, bigint or null; it hands out numbers on 64-bit Linux. */
export function asPtr(ret: Pointer | bigint | null): Pointer | null {
  if (ret === null || ret === 0 || ret === 0n) return null;
  return (typeof ret === "bigint" ? Number(ret) : ret) as Pointer;
}

/** Pointer-returning libbpf calls: NULL with errno set. */
export function checkPtr(call: string, ret: Pointer | bigint | null, detail?: string): Pointer {
  const p = asPtr(ret);
  if (p === null) throw new LibbpfError(call, errno() || 22, detail);
  return p;
}
