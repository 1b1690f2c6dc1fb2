/**
 * Everything between "the user ran us" and "we can load a BPF object": the
 * required checks, libbpf itself, its log, the memlock limit, the object image.
 */
import { readFileSync } from "node:fs";
import { embedded } from "../assets.ts";
import { HostError } from "../errors.ts";
import { installLibbpfPrint } from "../ffi/libbpf-log.ts";
import { raiseMemlock } from "../ffi/libc.ts";
import { openLibbpf } from "../ffi/libpath.ts";
import { firstFailure } from "./preflight.ts";

/**
 * Returns the BPF object image once the host is known to be able to load it:
 * a copy of its own (0.7 MB), which a caller that loads once lets go once
 * loaded, and one that loads several times keeps.
 */
export function prepareHost(): Uint8Array {
  const failure = firstFailure();
  if (failure !== null) throw new HostError(failure);
  openLibbpf();
  installLibbpfPrint();
  raiseMemlock();
  // Our own copy already (the loader writes into it): another would cost a millisecond of the start.
  return readFileSync(embedded.bpfObject);
}
