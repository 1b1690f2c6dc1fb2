/**
 * The kernel's types the BPF object needs at load: its CO-RE roots cut out of
 * the kernel's BTF (src/ebpf/core-btf.ts) and handed to libbpf in a sealed
 * memfd as btf_custom_path, and the BTF ids of the structs ds_cast casts to,
 * which go into .rodata with whether the kernel has the kfunc at all.
 */
import { memfdFromBytes } from "../ffi/memfd.ts";
import { log } from "../log.ts";
import { coreRoots, ds_config } from "../wire/layout.gen.ts";
import type { KernelTypes } from "./core-btf.ts";
import { runningKernelTypes } from "./core-btf-cache.ts";

/** The kfunc behind ds_cast (bpf/heap.bpf.h). */
const RDONLY_CAST = "bpf_rdonly_cast";
/** The structs ds_cast casts to: each has a kid_<name> in struct ds_config, the kernel's BTF id. */
const CAST_TYPES = Object.keys(ds_config.off)
  .filter((k) => k.startsWith("kid_"))
  .map((k) => k.slice(4));

/** What the loader asks of the kernel's BTF (src/ebpf/core-btf.ts): the object's CO-RE roots, the cast types' ids, the kfunc. */
export const CUT_REQUEST = { roots: coreRoots, structs: CAST_TYPES, funcs: [RDONLY_CAST] } as const;

/**
 * The kernel's types CUT_REQUEST asks for, from the cache or cut now
 * (src/ebpf/core-btf-cache.ts); null where the kernel's BTF cannot be read
 * that way, and libbpf reads it whole itself.
 */
export function loaderTypes(): KernelTypes | null {
  try {
    return runningKernelTypes(CUT_REQUEST);
  } catch (e) {
    log.warn(
      `cannot cut the kernel's BTF down to the types the programs read (${e instanceof Error ? e.message : String(e)}): libbpf resolves them in the whole of it, a slower start`,
    );
    return null;
  }
}

/**
 * The cut in a sealed memfd for btf_custom_path; null (libbpf reads the whole
 * BTF) when a root has no type in it, which libbpf would then look for in the
 * modules' BTF, which it skips once handed a BTF of our own.
 */
export function cutFile(types: KernelTypes | null): { fd: number; path: string } | null {
  if (types === null) return null;
  if (types.unmatched.length > 0) {
    log.debug(
      `the kernel's BTF has no ${types.unmatched.join(", ")}: libbpf resolves in the whole of it and the modules'`,
    );
    return null;
  }
  try {
    return memfdFromBytes("dual-slot-core-btf", types.btf, { executable: false });
  } catch (e) {
    log.warn(
      `cannot hand libbpf the cut of the kernel's BTF (${e instanceof Error ? e.message : String(e)}): it resolves in the whole of it, a slower start`,
    );
    return null;
  }
}

export type CastConfig = { task_cast: number } & {
  [K in keyof typeof ds_config.off as K extends `kid_${string}` ? K : never]: number;
};

/**
 * task_cast and the kernel's ids of the cast types: casts only where the
 * kernel has the kfunc and every type (else the programs read through
 * bpf_probe_read_kernel, as on 6.1).
 */
export function castConfig(types: KernelTypes | null): CastConfig {
  const ids = casts(types) ? types.ids : null;
  const config: Record<string, number> = { task_cast: ids === null ? 0 : 1 };
  for (const t of CAST_TYPES) config[`kid_${t}`] = ids?.get(t) ?? 0;
  return config as CastConfig;
}

/**
 * The id the object's bpf_rdonly_cast calls get (src/ebpf/kfunc-calls.ts): the
 * kernel's where the programs cast, else 0, a call the verifier prunes.
 */
export function rdonlyCastId(types: KernelTypes | null): number {
  return casts(types) ? types.funcs.get(RDONLY_CAST)! : 0;
}

/** Whether the programs cast: the kernel has the kfunc and every cast type. */
function casts(types: KernelTypes | null): types is KernelTypes {
  if (types === null) return false;
  return types.funcs.has(RDONLY_CAST) && CAST_TYPES.every((t) => types.ids.has(t));
}
