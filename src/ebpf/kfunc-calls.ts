/**
 * The object calls bpf_rdonly_cast by a raw kfunc call instruction whose id is
 * a placeholder (DS_KFUNC_RDONLY_CAST, bpf/heap.bpf.h), not through an extern:
 * for an extern kfunc libbpf reads and parses the whole kernel BTF at every
 * load to find one id, which the loader already has from its per-boot cut of
 * that BTF (src/ebpf/core-btf-cache.ts). This writes the id into a copy of the
 * object before libbpf opens it, in every code section (the programs' and the
 * global functions' in .text alike).
 */
import { ds_wire_const } from "../wire/layout.gen.ts";
import { elfSections, SHF_EXECINSTR, SHT_PROGBITS } from "./elf.ts";

const PLACEHOLDER = ds_wire_const.DS_KFUNC_RDONLY_CAST;
/** BPF_JMP | BPF_CALL; the next byte holds src_reg BPF_PSEUDO_KFUNC_CALL (2) in its high nibble, dst_reg 0. */
const CALL = 0x85;
const KFUNC_REGS = 0x20;
const INSN = 8;

/**
 * A copy of `image` (a little-endian ELF64 BPF object) with every placeholder
 * call's id set to `id`: the kernel's BTF id of bpf_rdonly_cast, or 0 where it
 * has none (the verifier accepts an id-0 call it prunes, as for an unresolved
 * weak kfunc; the programs only reach it where .rodata's task_cast is 1). Throws
 * when the object has no such call: it and the loader are not the same build.
 */
export function withRdonlyCastId(image: Uint8Array, id: number): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw new Error(`bpf_rdonly_cast's id ${id} is not a BTF id`);
  const out = Buffer.from(image);
  const call = Buffer.alloc(INSN);
  call[0] = CALL;
  call[1] = KFUNC_REGS;
  call.writeInt32LE(PLACEHOLDER, 4);
  let calls = 0;
  for (const s of elfSections(out)) {
    if (s.type !== SHT_PROGBITS || (s.flags & SHF_EXECINSTR) === 0) continue;
    if (s.start % INSN !== 0) throw new Error(`the BPF object's code section ${s.name} is not 8-byte aligned`);
    // A native search (the object is 0.7 MB, read once per start before the JIT has warmed up); only
    // matches on an instruction's boundary are instructions.
    for (let i = out.indexOf(call, s.start); i >= 0 && i + INSN <= s.end; i = out.indexOf(call, i + 1)) {
      if ((i - s.start) % INSN !== 0) continue;
      out.writeInt32LE(id, i + 4);
      calls++;
    }
  }
  if (calls === 0)
    throw new Error("the BPF object has no bpf_rdonly_cast call to resolve: it is not this loader's build");
  return out;
}
