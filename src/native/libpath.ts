/**
 * Where libbpf comes from: the copy embedded in this executable, loaded from a
 * sealed memfd (never from a file another user could have planted or that a
 * noexec /tmp would refuse), or, in a build made with --system-libbpf, the
 * host's libbpf.so.1 by soname from the system's trusted library path.
 */
import { readFileSync } from "node:fs";
import { embedded } from "../assets.ts";
import { loadLibbpf, type Libbpf } from "../ffi/libbpf.ts";
import { HostError } from "../errors.ts";
import { memfdFromBytes } from "./memfd.ts";

export function openLibbpf(): Libbpf {
  if (embedded.libbpfSo !== null) {
    const { path } = memfdFromBytes("libbpf.so", readFileSync(embedded.libbpfSo));
    return loadLibbpf(path);
  }
  try {
    return loadLibbpf("libbpf.so.1");
  } catch (e) {
    throw new HostError(`cannot load the system's libbpf.so.1 (this build does not embed one): ${e instanceof Error ? e.message : String(e)}`);
  }
}
