/**
 * The kernel's BTF cut down to what the object's CO-RE relocations resolve.
 *
 * libbpf finds a relocation's target by scanning every type of the kernel's
 * BTF (about 125,000 on 6.18) for each root type the programs read, comparing
 * names: 26 scans, 15-25 ms of every start. Handed a BTF of only those root
 * types (every kernel type of the same kind and essential name, as libbpf
 * would have found) and the types they embed, through btf_custom_path, it
 * relocates the same instructions to the same offsets in well under a
 * millisecond. test/kernel/core-btf.test.ts compares every patched instruction
 * both ways.
 *
 * What is kept is exact where a relocation can look: members with their names,
 * offsets and bitfields, embedded structs, unions, arrays, enums, ints,
 * typedefs and qualifiers. A pointer keeps its kind but points at void: libbpf
 * takes any pointer for a pointer (bpf_core_fields_are_compat), and a chain
 * through a pointer (task->mm->exe_file) is a relocation of its own, rooted at
 * the pointee, which is a root here too. The build refuses relocations that
 * would see the difference (target type ids, type matches: scripts/wire-gen.ts).
 *
 * The same walk finds the kernel's ids of the types bpf_rdonly_cast casts to
 * (.rodata, bpf/heap.bpf.h) and whether the kernel has that kfunc.
 */

import { type Pointer, toArrayBuffer } from "bun:ffi";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { mmap, munmap } from "../ffi/libc.ts";

export const BTF_MAGIC = 0xeb9f;
/** struct btf_header's size: magic, version, flags, hdr_len, and the two sections' offsets and lengths. */
export const HEADER_LEN = 24;

// BTF kinds (include/uapi/linux/btf.h).
const INT = 1;
const PTR = 2;
const ARRAY = 3;
const STRUCT = 4;
const UNION = 5;
const ENUM = 6;
const FWD = 7;
const TYPEDEF = 8;
const VOLATILE = 9;
const CONST = 10;
const RESTRICT = 11;
const FUNC = 12;
const FUNC_PROTO = 13;
const VAR = 14;
const DATASEC = 15;
const FLOAT = 16;
const DECL_TAG = 17;
const TYPE_TAG = 18;
const ENUM64 = 19;

const KIND_BY_NAME: Readonly<Record<string, number>> = {
  STRUCT,
  UNION,
  ENUM,
  ENUM64,
  TYPEDEF,
  INT,
  FWD,
  FLOAT,
};

export interface CoreRoot {
  readonly kind: string;
  readonly name: string;
}

export interface KernelTypes {
  /** Raw BTF (header, types, strings) for btf_custom_path. */
  readonly btf: Uint8Array;
  /** The kernel's BTF id of each struct asked for by name; absent when the kernel has none. */
  readonly ids: ReadonlyMap<string, number>;
  /** The kernel's BTF id of each function asked for that it has (kfuncs among them). */
  readonly funcs: ReadonlyMap<string, number>;
  /** Roots the kernel has no type for (a module's type, or one this kernel lacks). */
  readonly unmatched: readonly string[];
  /** Types kept, and the kernel's total. */
  readonly kept: number;
  readonly total: number;
}

export class BtfFormatError extends Error {
  constructor(what: string) {
    super(`the kernel's BTF is malformed: ${what}`);
    this.name = "BtfFormatError";
  }
}

const PROT_READ = 1;
const MAP_PRIVATE = 2;

/**
 * Calls `use` with the kernel's BTF, mapped read-only where sysfs allows it
 * (6.16+): 0.6 ms and no copy, against 7.6 ms for 1,339 reads of 4 KiB on
 * 6.18. Elsewhere it is read whole. The mapping is gone once `use` returns,
 * so `use` must keep nothing that views its bytes (kernelTypes copies what it
 * keeps).
 */
export function withKernelBtf<T>(use: (raw: Uint8Array) => T, path = "/sys/kernel/btf/vmlinux"): T {
  const fd = openSync(path, "r");
  let at: Pointer | null = null;
  let size = 0;
  try {
    size = fstatSync(fd).size;
    at = size > 0 ? mmap(null, size, PROT_READ, MAP_PRIVATE, fd, 0) : null;
  } finally {
    closeSync(fd);
  }
  if (at === null) return use(readKernelBtf(path));
  try {
    return use(new Uint8Array(toArrayBuffer(at, 0, size)));
  } finally {
    munmap(at, size);
  }
}

/** /sys/kernel/btf/vmlinux, whole (sysfs hands it over 4 KiB a read). */
export function readKernelBtf(path = "/sys/kernel/btf/vmlinux"): Uint8Array {
  const fd = openSync(path, "r");
  try {
    return readAll(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

/**
 * Up to `size` bytes of `fd` from its start, in as many reads as it takes
 * (sysfs hands over 4 KiB a read); fewer if the file ends first. Its own
 * ArrayBuffer at offset 0: the type section is read as aligned u32s.
 */
export function readAll(fd: number, size: number): Uint8Array {
  const buf = new Uint8Array(size);
  let got = 0;
  while (got < size) {
    const n = readSync(fd, buf, got, size - got, got);
    if (n <= 0) break;
    got += n;
  }
  return got === size ? buf : buf.slice(0, got);
}

/** Whether libbpf would take a target of kind `t` for a local root of kind `local` (btf_kind_core_compat). */
function kindCompat(local: number, t: number): boolean {
  return local === t || ((local === ENUM || local === ENUM64) && (t === ENUM || t === ENUM64));
}

/**
 * Cuts `raw` (a kernel's BTF) down to the candidates of `roots` and what they
 * embed; looks up `structs` and `funcs` by exact name on the way.
 */
export function kernelTypes(
  raw: Uint8Array,
  roots: readonly CoreRoot[],
  structs: readonly string[] = [],
  funcs: readonly string[] = [],
): KernelTypes {
  if (raw.byteLength < HEADER_LEN) throw new BtfFormatError("shorter than its header");
  const hv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (hv.getUint16(0, true) !== BTF_MAGIC) throw new BtfFormatError("bad magic number (or not little-endian)");
  const hdrLen = hv.getUint32(4, true);
  const typeStart = hdrLen + hv.getUint32(8, true);
  const typeEnd = typeStart + hv.getUint32(12, true);
  const strStart = hdrLen + hv.getUint32(16, true);
  const strEnd = strStart + hv.getUint32(20, true);
  if (hdrLen < HEADER_LEN || typeEnd > raw.byteLength || strEnd > raw.byteLength || typeEnd < typeStart) {
    throw new BtfFormatError("sections outside the data");
  }
  if (typeStart % 4 !== 0 || (typeEnd - typeStart) % 4 !== 0)
    throw new BtfFormatError("type section not 4-byte aligned");
  // The type section is read as u32s, which needs an aligned view.
  if (raw.byteOffset % 4 !== 0) return kernelTypes(raw.slice(), roots, structs, funcs);
  const words = new Uint32Array(raw.buffer, raw.byteOffset + typeStart, (typeEnd - typeStart) / 4);

  // Every name sought, filed under its first two bytes: most names are rejected on one lookup.
  interface Sought {
    readonly name: Uint8Array;
    readonly text: string;
    /** A root's kind; STRUCT for a struct id; FUNC for a function. */
    readonly kind: number;
    readonly role: "root" | "struct" | "func";
  }
  const lists: Sought[][] = [];
  const listOf = new Int16Array(1 << 16).fill(-1);
  const seek = (text: string, kind: number, role: Sought["role"]): void => {
    const name = new TextEncoder().encode(text);
    if (name.length === 0) throw new Error("an empty name cannot be looked up in BTF");
    // A one-byte name is also "x___flavour" to libbpf: filed under "x\0" and "x_".
    const prefixes = name.length === 1 ? [name[0]!, name[0]! | (0x5f << 8)] : [name[0]! | (name[1]! << 8)];
    for (const prefix of prefixes) {
      if (listOf[prefix] === -1) listOf[prefix] = lists.push([]) - 1;
      lists[listOf[prefix]!]!.push({ name, text, kind, role });
    }
  };
  for (const r of roots) {
    const kind = KIND_BY_NAME[r.kind];
    if (kind === undefined) throw new Error(`CO-RE root of kind ${r.kind} is not supported`);
    seek(r.name, kind, "root");
  }
  for (const s of structs) seek(s, STRUCT, "struct");
  for (const f of funcs) seek(f, FUNC, "func");

  // Pass 1: where each type starts (in words), and the candidates. One loop over
  // 125,000 types: it runs once per start, mostly before the JIT has warmed up.
  let kindMask = 0;
  for (const list of lists) for (const x of list) kindMask |= x.role === "root" ? rootKinds(x.kind) : 1 << x.kind;
  let offsets = new Uint32Array(1 << 17);
  let count = 1;
  const candidates: number[] = [];
  const matched = new Set<string>();
  const ids = new Map<string, number>();
  const found = new Map<string, number>();
  let w = 0;
  for (; w < words.length; count++) {
    if (count === offsets.length) {
      const grown = new Uint32Array(offsets.length * 2);
      grown.set(offsets);
      offsets = grown;
    }
    offsets[count] = w;
    const nameOff = words[w]!;
    const info = words[w + 1]!;
    const kind = (info >>> 24) & 0x1f;
    if (KNOWN_KIND[kind] === 0) throw new BtfFormatError(`type ${count} has unknown kind ${kind}`);
    w += 3 + FIXED_WORDS[kind]! + VLEN_WORDS[kind]! * (info & 0xffff);
    if (((kindMask >>> kind) & 1) === 0 || nameOff === 0) continue;
    const at = strStart + nameOff;
    const li = listOf[raw[at]! | (raw[at + 1]! << 8)]!;
    if (li < 0) continue;
    const sought = lists[li]!;
    for (let i = 0; i < sought.length; i++) {
      const x = sought[i]!;
      if (x.role === "root") {
        if (kindCompat(x.kind, kind) && nameIs(raw, at, strEnd, x.name, true)) {
          candidates.push(count);
          matched.add(x.text);
        }
      } else if (x.kind === kind && nameIs(raw, at, strEnd, x.name, false)) {
        // The first of a name, as libbpf's btf__find_by_name_kind finds it.
        const into = x.role === "func" ? found : ids;
        if (!into.has(x.text)) into.set(x.text, count);
      }
    }
  }
  if (w !== words.length) throw new BtfFormatError(`type ${count - 1} runs past the type section`);

  // Pass 2: the candidates and what they embed, numbered from 1 in the order met.
  const newId = new Map<number, number>([[0, 0]]);
  const order: number[] = [];
  const stack = [...candidates].reverse();
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (newId.has(id)) continue;
    newId.set(id, order.length + 1);
    order.push(id);
    const refs: number[] = [];
    recordWords(words, offsets[id]!, id, (at) => {
      const ref = words[at]!;
      if (ref >= count) throw new BtfFormatError(`a reference to type ${ref}, past the last (${count - 1})`);
      refs.push(ref);
    });
    // Reversed onto the stack: the first member is met first.
    for (let i = refs.length - 1; i >= 0; i--) stack.push(refs[i]!);
  }

  // Pass 3: the cut, each record as it is but for its names (its own string
  // section) and type ids (the cut's numbering; a pointer's, void).
  const strings = new StringTable(raw, strStart, strEnd);
  const out: number[] = [];
  for (const id of order) {
    const w = offsets[id]!;
    const info = words[w + 1]!;
    const kind = (info >>> 24) & 0x1f;
    const start = out.length;
    for (let i = w, end = w + 3 + FIXED_WORDS[kind]! + VLEN_WORDS[kind]! * (info & 0xffff); i < end; i++) {
      out.push(words[i]!);
    }
    if (kind === PTR) out[start + 2] = 0;
    recordWords(
      words,
      w,
      id,
      (at) => {
        out[start + at - w] = newId.get(words[at]!)!;
      },
      (at) => {
        out[start + at - w] = strings.add(words[at]!);
      },
    );
  }

  const typeBytes = out.length * 4;
  const str = strings.bytes();
  const btf = new Uint8Array(HEADER_LEN + typeBytes + str.length);
  const v = new DataView(btf.buffer);
  v.setUint16(0, BTF_MAGIC, true);
  btf[2] = 1; // version
  v.setUint32(4, HEADER_LEN, true);
  v.setUint32(8, 0, true);
  v.setUint32(12, typeBytes, true);
  v.setUint32(16, typeBytes, true);
  v.setUint32(20, str.length, true);
  new Uint32Array(btf.buffer, HEADER_LEN, out.length).set(out);
  btf.set(str, HEADER_LEN + typeBytes);
  const unmatched = roots.map((r) => r.name).filter((n) => !matched.has(n));
  return { btf, ids, funcs: found, unmatched, kept: order.length, total: count - 1 };
}

// Words after a type's 3-word header: fixed, and per vlen entry (btf_type_size() in libbpf).
const FIXED_WORDS = new Uint8Array(32);
const VLEN_WORDS = new Uint8Array(32);
const KNOWN_KIND = new Uint8Array(32);
for (const k of [INT, VAR, DECL_TAG]) FIXED_WORDS[k] = 1;
FIXED_WORDS[ARRAY] = 3;
for (const k of [STRUCT, UNION, DATASEC, ENUM64]) VLEN_WORDS[k] = 3;
for (const k of [ENUM, FUNC_PROTO]) VLEN_WORDS[k] = 2;
for (let k = INT; k <= ENUM64; k++) KNOWN_KIND[k] = 1;

/**
 * The `vlen` entries after the record at `w` (a struct's members, a
 * function's parameters, an enum's values), `step` words each: each one's
 * name, then its type where it has one (`ref` null: an enumerator has none).
 */
function members(
  w: number,
  vlen: number,
  step: number,
  name: (at: number) => void,
  ref: ((at: number) => void) | null,
): void {
  for (let i = 0, m = w + 3; i < vlen; i++, m += step) {
    name(m);
    if (ref !== null) ref(m + 1);
  }
}

/**
 * Calls `ref` with the index of each word of the record at `w` that holds a
 * type id, and `name` with each that holds a string offset (its own name
 * first), in record order. A pointer's target is no reference here: the cut
 * points it at void. Kinds no struct can embed (functions, variables,
 * sections, tags) are an error: a type the programs read cannot reach them.
 */
function recordWords(
  words: Uint32Array,
  w: number,
  id: number,
  ref: (at: number) => void,
  name: (at: number) => void = () => {},
): void {
  const info = words[w + 1]!;
  const kind = (info >>> 24) & 0x1f;
  const vlen = info & 0xffff;
  name(w);
  switch (kind) {
    case TYPEDEF:
    case VOLATILE:
    case CONST:
    case RESTRICT:
    case TYPE_TAG:
      ref(w + 2);
      break;
    case ARRAY:
      ref(w + 3); // element
      ref(w + 4); // index
      break;
    case STRUCT:
    case UNION:
      members(w, vlen, VLEN_WORDS[kind]!, name, ref);
      break;
    case ENUM:
    case ENUM64:
      members(w, vlen, VLEN_WORDS[kind]!, name, null);
      break;
    case FUNC_PROTO:
      ref(w + 2); // return type
      members(w, vlen, VLEN_WORDS[kind]!, name, ref);
      break;
    case PTR:
    case INT:
    case FWD:
    case FLOAT:
      break;
    default:
      throw new BtfFormatError(`type ${id} (kind ${kind}) is embedded in a type the programs read`);
  }
}

/** The kinds libbpf takes as a target for a root of `kind` (a bit each). */
function rootKinds(kind: number): number {
  return kind === ENUM || kind === ENUM64 ? (1 << ENUM) | (1 << ENUM64) : 1 << kind;
}

/** Whether the string at `at` is `name` exactly (flavour: or `name___suffix`, libbpf's essential name). */
function nameIs(raw: Uint8Array, at: number, end: number, name: Uint8Array, flavour: boolean): boolean {
  if (at + name.length >= end) return false;
  for (let i = 0; i < name.length; i++) if (raw[at + i] !== name[i]) return false;
  if (raw[at + name.length] === 0) return true;
  return flavour && essentialLength(raw, at, end) === name.length;
}

/** libbpf's bpf_core_essential_name_len() for the NUL-terminated string at `at`. */
function essentialLength(raw: Uint8Array, at: number, end: number): number {
  let n = 0;
  while (at + n < end && raw[at + n] !== 0) n++;
  const u = 0x5f; // '_'
  for (let i = n - 5; i >= 0; i--) {
    const s = at + i;
    if (raw[s] !== u && raw[s + 1] === u && raw[s + 2] === u && raw[s + 3] === u && raw[s + 4] !== u) return i + 1;
  }
  return n;
}

/** The cut's strings: "" first, each name once. */
class StringTable {
  private readonly index = new Map<number, number>([[0, 0]]);
  private readonly chunks: Uint8Array[] = [new Uint8Array(1)];
  private size = 1;

  constructor(
    private readonly raw: Uint8Array,
    private readonly start: number,
    private readonly end: number,
  ) {}

  add(off: number): number {
    const known = this.index.get(off);
    if (known !== undefined) return known;
    const at = this.start + off;
    let e = at;
    while (e < this.end && this.raw[e] !== 0) e++;
    if (e >= this.end) throw new BtfFormatError(`string at ${off} is not terminated`);
    const s = this.raw.subarray(at, e + 1);
    const mine = this.size;
    this.chunks.push(s);
    this.size += s.length;
    this.index.set(off, mine);
    return mine;
  }

  bytes(): Uint8Array {
    const b = new Uint8Array(this.size);
    let p = 0;
    for (const c of this.chunks) {
      b.set(c, p);
      p += c.length;
    }
    return b;
  }
}
