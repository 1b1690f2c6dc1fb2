/**
 * The object calls bpf_rdonly_cast by a raw kfunc call instruction whose id is
 * a placeholder (DS_KFUNC_RDONLY_CAST, bpf/heap.bpf.h), not through an extern:
 * for an extern kfunc libbpf reads and parses the whole kernel BTF at every
 * load to find one id, which the loader already has from its per-boot cut of
 * that BTF (src/ebpf/core-btf-cache.ts). This writes the id into the object
 * before libbpf opens it, in every code section (the programs' and the
 * global functions' in .text alike).
 */
import { ds_wire_const } from "../wire/layout.gen.ts";
import { elfSections, SHF_EXECINSTR, SHT_PROGBITS } from "./elf.ts";

const PLACEHOLDER = ds_wire_const.DS_KFUNC_RDONLY_CAST;
/** BPF_JMP | BPF_CALL; the next byte holds src_reg BPF_PSEUDO_KFUNC_CALL (2) in its high nibble, dst_reg 0. */
const CALL = 0x85;
const KFUNC_REGS = 0x20;
const INSN = 8;

/** Where each image's placeholder calls are: found once, since the first write overwrites the placeholder. */
const callSites = new WeakMap<Uint8Array, number[]>();

/**
 * Sets every placeholder call's id in `image` (a little-endian ELF64 BPF object), in place: the
 * kernel's BTF id of bpf_rdonly_cast, or 0 where it has none (the verifier accepts an id-0 call it
 * prunes, as for an unresolved weak kfunc; the programs only reach it where .rodata's task_cast is
 * 1). In place because a copy of the 0.7 MB object cost about a millisecond of every start, and
 * libbpf copies what it keeps when it opens the object. The same image can be set again (a load
 * retried): its calls are remembered. Throws when the object has no such call: it and the loader
 * are not the same build.
 */
export function setRdonlyCastId(image: Uint8Array, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw new Error(`bpf_rdonly_cast's id ${id} is not a BTF id`);
  let sites = callSites.get(image);
  if (sites === undefined) {
    sites = placeholderCalls(image);
    callSites.set(image, sites);
  }
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  for (const at of sites) v.setInt32(at + 4, id, true);
}

function placeholderCalls(image: Uint8Array): number[] {
  const bytes = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  const call = Buffer.alloc(INSN);
  call[0] = CALL;
  call[1] = KFUNC_REGS;
  call.writeInt32LE(PLACEHOLDER, 4);
  const sites: number[] = [];
  for (const s of elfSections(image)) {
    if (s.type !== SHT_PROGBITS || (s.flags & SHF_EXECINSTR) === 0) continue;
    if (s.start % INSN !== 0) throw new Error(`the BPF object's code section ${s.name} is not 8-byte aligned`);
    // A native search (the object is 0.7 MB, read once per start before the JIT has warmed up); only
    // matches on an instruction's boundary are instructions.
    for (let i = bytes.indexOf(call, s.start); i >= 0 && i + INSN <= s.end; i = bytes.indexOf(call, i + 1)) {
      if ((i - s.start) % INSN === 0) sites.push(i);
    }
  }
  if (sites.length === 0)
    throw new Error("the BPF object has no bpf_rdonly_cast call to resolve: it is not this loader's build");
  return sites;
}
