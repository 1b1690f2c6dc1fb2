/**
 * Strict, bounds-checked reader for raw BTF (a `.BTF` ELF section or
 * /sys/kernel/btf/vmlinux). Exists so wire-format layouts and `.rodata`
 * config offsets come from the compiler's own type info instead of
 * hand-maintained constants. The whole blob is validated once in parse()
 * (record sizes, string offsets, type references), so accessors only have to
 * guard semantic problems such as reference cycles.
 *
 * Not supported: split BTF (kernel module BTF, whose ids and strings continue
 * those of vmlinux) and big-endian blobs; both are rejected or misread as
 * malformed, never silently trusted.
 */

import { cstring, elfSection, elfSections, elfSymbols, STT_OBJECT } from "./elf.ts";
import { BtfError } from "./error.ts";

export { BtfError };

/** BTF_KIND_* values; UNKN (0) is only the kind of type id 0 (void) and is invalid inside a blob. */
export enum BtfKind {
  UNKN,
  INT,
  PTR,
  ARRAY,
  STRUCT,
  UNION,
  ENUM,
  FWD,
  TYPEDEF,
  VOLATILE,
  CONST,
  RESTRICT,
  FUNC,
  FUNC_PROTO,
  VAR,
  DATASEC,
  FLOAT,
  DECL_TAG,
  TYPE_TAG,
  ENUM64,
}

export interface BtfMember {
  name: string;
  /** Byte offset of the member (containing byte for bitfields). */
  offset: number;
  /** Bit offset from the start of the struct. */
  bitOffset: number;
  /** Bitfield width, 0 for ordinary members. */
  bitSize: number;
  /** Byte size of the member's type (the storage unit's type for bitfields). */
  size: number;
  typeId: number;
}

export interface BtfStruct {
  size: number;
  members: BtfMember[];
}

export interface BtfVar {
  name: string;
  offset: number;
  size: number;
  /** The variable's declared type (what the VAR points at); for a FUNC entry (.ksyms) the FUNC id. */
  typeId: number;
}

export interface BtfDatasec {
  size: number;
  vars: BtfVar[];
}

const MAGIC = 0xeb9f;
const HDR_MIN = 24;
const REC = 12;
// Same bound libbpf uses for modifier/typedef chains; a deeper chain in real
// BTF does not exist, in a corrupt blob it is a cycle.
const MAX_DEPTH = 32;
const MAX_KIND = BtfKind.ENUM64;

/** Bytes of kind-specific data following the 12-byte btf_type record. */
function trailerSize(kind: number, vlen: number): number {
  switch (kind) {
    case BtfKind.INT:
    case BtfKind.VAR:
    case BtfKind.DECL_TAG:
      return 4;
    case BtfKind.ARRAY:
      return 12;
    case BtfKind.STRUCT:
    case BtfKind.UNION:
    case BtfKind.DATASEC:
    case BtfKind.ENUM64:
      return vlen * 12;
    case BtfKind.ENUM:
    case BtfKind.FUNC_PROTO:
      return vlen * 8;
    default:
      return 0;
  }
}

function isModifier(kind: number): boolean {
  return (
    kind === BtfKind.TYPEDEF ||
    kind === BtfKind.VOLATILE ||
    kind === BtfKind.CONST ||
    kind === BtfKind.RESTRICT ||
    kind === BtfKind.TYPE_TAG
  );
}

export class Btf {
  /** Number of types in the blob; valid ids are 0 (void) .. typeCount. */
  readonly typeCount: number;
  private readonly dv: DataView;
  private readonly strs: Uint8Array;
  /** offs[id] = byte offset of type `id` in the type section (offs[0] unused). */
  private readonly offs: Uint32Array;
  private byName: Map<string, number[]> | undefined;

  private constructor(types: Uint8Array, strs: Uint8Array, offs: Uint32Array) {
    this.dv = new DataView(types.buffer, types.byteOffset, types.byteLength);
    this.strs = strs;
    this.offs = offs;
    this.typeCount = offs.length - 1;
  }

  static parse(input: Uint8Array): Btf {
    // Private copy: validation below is only meaningful if the bytes cannot change afterwards.
    const raw = input.slice();
    if (raw.length < HDR_MIN) throw new BtfError(`BTF: blob too short for header (${raw.length} bytes)`);
    const h = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const magic = h.getUint16(0, true);
    if (magic === 0x9feb) throw new BtfError("BTF: big-endian BTF is not supported");
    if (magic !== MAGIC) throw new BtfError(`BTF: bad magic 0x${magic.toString(16)}`);
    const version = h.getUint8(2);
    if (version !== 1) throw new BtfError(`BTF: unsupported version ${version}`);
    const hdrLen = h.getUint32(4, true);
    const typeOff = h.getUint32(8, true);
    const typeLen = h.getUint32(12, true);
    const strOff = h.getUint32(16, true);
    const strLen = h.getUint32(20, true);
    // Newer writers may append header fields; they sit inside hdr_len and are ignored.
    if (hdrLen < HDR_MIN || hdrLen > raw.length)
      throw new BtfError(`BTF: hdr_len ${hdrLen} invalid for ${raw.length}-byte blob`);
    const avail = raw.length - hdrLen;
    if (typeOff > avail || typeLen > avail - typeOff) throw new BtfError("BTF: type section outside blob");
    if (strOff > avail || strLen > avail - strOff) throw new BtfError("BTF: string section outside blob");
    if (typeOff % 4 !== 0) throw new BtfError(`BTF: type_off ${typeOff} not 4-byte aligned`);
    if (typeLen > 0 && typeOff < strOff + strLen && strOff < typeOff + typeLen)
      throw new BtfError("BTF: type and string sections overlap");
    if (strLen === 0 || raw[hdrLen + strOff] !== 0 || raw[hdrLen + strOff + strLen - 1] !== 0) {
      throw new BtfError("BTF: string section must start and end with NUL");
    }
    const types = raw.subarray(hdrLen + typeOff, hdrLen + typeOff + typeLen);
    const strs = raw.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
    const dv = new DataView(types.buffer, types.byteOffset, types.byteLength);

    const offs: number[] = [0];
    for (let p = 0; p < typeLen; ) {
      if (typeLen - p < REC) throw new BtfError(`BTF: truncated type record for id ${offs.length}`);
      const info = dv.getUint32(p + 4, true);
      const kind = (info >>> 24) & 0x1f;
      if (kind === 0 || kind > MAX_KIND) throw new BtfError(`BTF: type id ${offs.length} has unknown kind ${kind}`);
      const size = REC + trailerSize(kind, info & 0xffff);
      if (size > typeLen - p)
        throw new BtfError(`BTF: type id ${offs.length} (kind ${BtfKind[kind]}) overruns type section`);
      offs.push(p);
      p += size;
    }
    const btf = new Btf(types, strs, Uint32Array.from(offs));
    btf.validateRefs();
    return btf;
  }

  static fromElf(obj: Uint8Array): Btf {
    const sec = elfSection(obj, ".BTF");
    if (!sec) throw new BtfError("ELF: object has no .BTF section (compile with -g)");
    return Btf.parse(sec);
  }

  /** Every name offset and type reference in range, so later reads cannot leave the blob. */
  private validateRefs(): void {
    const n = this.typeCount;
    const strLen = this.strs.length;
    const dv = this.dv;
    const ref = (id: number, t: number, what: string): void => {
      if (t > n) throw new BtfError(`BTF: type id ${id} ${what} references missing type ${t}`);
    };
    const name = (id: number, off: number): void => {
      if (off >= strLen) throw new BtfError(`BTF: type id ${id} name offset ${off} outside string section`);
    };
    for (let id = 1; id <= n; id++) {
      const p = this.offs[id]!;
      const { kind, vlen, sizeType } = this.rec(id);
      name(id, dv.getUint32(p, true));
      const t = p + REC;
      switch (kind) {
        case BtfKind.PTR:
        case BtfKind.TYPEDEF:
        case BtfKind.VOLATILE:
        case BtfKind.CONST:
        case BtfKind.RESTRICT:
        case BtfKind.FUNC:
        case BtfKind.VAR:
        case BtfKind.TYPE_TAG:
        case BtfKind.DECL_TAG:
          ref(id, sizeType, "target");
          break;
        case BtfKind.ARRAY:
          ref(id, dv.getUint32(t, true), "element");
          ref(id, dv.getUint32(t + 4, true), "index");
          break;
        case BtfKind.FUNC_PROTO:
          ref(id, sizeType, "return");
          for (let i = 0; i < vlen; i++) {
            name(id, dv.getUint32(t + i * 8, true));
            ref(id, dv.getUint32(t + i * 8 + 4, true), `param ${i}`);
          }
          break;
        case BtfKind.STRUCT:
        case BtfKind.UNION:
          for (let i = 0; i < vlen; i++) {
            name(id, dv.getUint32(t + i * 12, true));
            ref(id, dv.getUint32(t + i * 12 + 4, true), `member ${i}`);
          }
          break;
        case BtfKind.DATASEC:
          for (let i = 0; i < vlen; i++) ref(id, dv.getUint32(t + i * 12, true), `var ${i}`);
          break;
        case BtfKind.ENUM:
        case BtfKind.ENUM64: {
          const step = kind === BtfKind.ENUM ? 8 : 12;
          for (let i = 0; i < vlen; i++) name(id, dv.getUint32(t + i * step, true));
          break;
        }
      }
    }
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id > this.typeCount) throw new BtfError(`BTF: type id ${id} out of range`);
  }

  private rec(id: number): { kind: BtfKind; vlen: number; kflag: boolean; sizeType: number; trailer: number } {
    this.check(id);
    if (id === 0) return { kind: BtfKind.UNKN, vlen: 0, kflag: false, sizeType: 0, trailer: 0 };
    const p = this.offs[id]!;
    const info = this.dv.getUint32(p + 4, true);
    return {
      kind: ((info >>> 24) & 0x1f) as BtfKind,
      vlen: info & 0xffff,
      kflag: info >>> 31 === 1,
      sizeType: this.dv.getUint32(p + 8, true),
      trailer: p + REC,
    };
  }

  private str(off: number): string {
    return cstring(this.strs, off, "BTF");
  }

  kindOf(id: number): BtfKind {
    return this.rec(id).kind;
  }

  /** "" for void and anonymous types. */
  nameOf(id: number): string {
    this.check(id);
    return id === 0 ? "" : this.str(this.dv.getUint32(this.offs[id]!, true));
  }

  /** First type id with this name (and kind, if given); names are not unique across kinds. */
  findByName(name: string, kind?: BtfKind): number | undefined {
    if (!this.byName) {
      const m = new Map<string, number[]>();
      for (let id = 1; id <= this.typeCount; id++) {
        const nm = this.nameOf(id);
        if (nm === "") continue;
        const ids = m.get(nm);
        if (ids) ids.push(id);
        else m.set(nm, [id]);
      }
      this.byName = m;
    }
    const ids = this.byName.get(name);
    if (!ids) return undefined;
    return kind === undefined ? ids[0] : ids.find((id) => this.kindOf(id) === kind);
  }

  /** Strips typedef/volatile/const/restrict/type_tag. */
  resolve(id: number): number {
    for (let depth = 0; depth <= MAX_DEPTH; depth++) {
      const r = this.rec(id);
      if (!isModifier(r.kind)) return id;
      id = r.sizeType;
    }
    throw new BtfError(`BTF: modifier chain deeper than ${MAX_DEPTH} (cycle?)`);
  }

  sizeOf(id: number): number {
    let mult = 1;
    for (let depth = 0; depth <= MAX_DEPTH; depth++) {
      const r = this.rec(id);
      switch (r.kind) {
        case BtfKind.INT:
        case BtfKind.STRUCT:
        case BtfKind.UNION:
        case BtfKind.ENUM:
        case BtfKind.ENUM64:
        case BtfKind.DATASEC:
        case BtfKind.FLOAT:
        case BtfKind.PTR: {
          // BPF and every 64-bit kernel we target use 8-byte pointers.
          const size = mult * (r.kind === BtfKind.PTR ? 8 : r.sizeType);
          if (!Number.isSafeInteger(size)) throw new BtfError(`BTF: size of type overflows`);
          return size;
        }
        case BtfKind.TYPEDEF:
        case BtfKind.VOLATILE:
        case BtfKind.CONST:
        case BtfKind.RESTRICT:
        case BtfKind.VAR:
        case BtfKind.DECL_TAG:
        case BtfKind.TYPE_TAG:
          id = r.sizeType;
          break;
        case BtfKind.ARRAY:
          mult *= this.dv.getUint32(r.trailer + 8, true);
          id = this.dv.getUint32(r.trailer, true);
          break;
        default:
          throw new BtfError(`BTF: type id ${id} (${BtfKind[r.kind]}) has no size`);
      }
    }
    throw new BtfError(`BTF: type chain deeper than ${MAX_DEPTH} (cycle?)`);
  }

  /** Layout of a struct or union, by name (struct preferred over union) or type id (modifiers are followed). */
  struct(nameOrId: string | number): BtfStruct {
    let id: number | undefined;
    if (typeof nameOrId === "number") id = this.resolve(nameOrId);
    else id = this.findByName(nameOrId, BtfKind.STRUCT) ?? this.findByName(nameOrId, BtfKind.UNION);
    if (id === undefined) throw new BtfError(`BTF: no struct or union named '${nameOrId}'`);
    const r = this.rec(id);
    if (r.kind !== BtfKind.STRUCT && r.kind !== BtfKind.UNION) {
      throw new BtfError(`BTF: type id ${id} is ${BtfKind[r.kind]}, not a struct or union`);
    }
    const members: BtfMember[] = [];
    for (let i = 0; i < r.vlen; i++) {
      const m = r.trailer + i * 12;
      const typeId = this.dv.getUint32(m + 4, true);
      const raw = this.dv.getUint32(m + 8, true);
      // kind_flag=1 packs bitfield_size<<24 | bit_offset into the offset word.
      let bitOffset = r.kflag ? raw & 0xffffff : raw;
      let bitSize = r.kflag ? raw >>> 24 : 0;
      if (!r.kflag) {
        // Pre-kind_flag encoding: a bitfield is an INT whose own encoding narrows it.
        const base = this.rec(this.resolve(typeId));
        if (base.kind === BtfKind.INT) {
          const enc = this.dv.getUint32(base.trailer, true);
          const nrBits = enc & 0xff;
          const intOff = (enc >>> 16) & 0xff;
          if (intOff !== 0 || nrBits !== base.sizeType * 8) {
            bitOffset += intOff;
            bitSize = nrBits;
          }
        }
      }
      members.push({
        name: this.str(this.dv.getUint32(m, true)),
        offset: Math.floor(bitOffset / 8),
        bitOffset,
        bitSize,
        size: this.sizeOf(typeId),
        typeId,
      });
    }
    return { size: r.sizeType, members };
  }

  /**
   * Raw DATASEC as recorded in BTF. In a clang-built .o, size and var offsets
   * are not filled in (see datasecFromElf); use that for objects.
   */
  datasec(name: string): BtfDatasec {
    const id = this.findByName(name, BtfKind.DATASEC);
    if (id === undefined) throw new BtfError(`BTF: no DATASEC named '${name}'`);
    const r = this.rec(id);
    const vars: BtfVar[] = [];
    for (let i = 0; i < r.vlen; i++) {
      const v = r.trailer + i * 12;
      const varId = this.dv.getUint32(v, true);
      const vr = this.rec(varId);
      if (vr.kind !== BtfKind.VAR && vr.kind !== BtfKind.FUNC) {
        throw new BtfError(`BTF: DATASEC '${name}' entry ${i} is ${BtfKind[vr.kind]}, not VAR/FUNC`);
      }
      vars.push({
        name: this.nameOf(varId),
        offset: this.dv.getUint32(v + 4, true),
        size: this.dv.getUint32(v + 8, true),
        typeId: vr.kind === BtfKind.VAR ? vr.sizeType : varId,
      });
    }
    return { size: r.sizeType, vars };
  }

  /** Enumerators of a named ENUM or ENUM64; kind_flag=1 means signed values, 0 unsigned (libbpf semantics). */
  enumValues(name: string): Map<string, bigint> {
    const id = this.findByName(name, BtfKind.ENUM) ?? this.findByName(name, BtfKind.ENUM64);
    if (id === undefined) throw new BtfError(`BTF: no enum named '${name}'`);
    const r = this.rec(id);
    const out = new Map<string, bigint>();
    for (let i = 0; i < r.vlen; i++) {
      let v: bigint;
      let p: number;
      if (r.kind === BtfKind.ENUM) {
        p = r.trailer + i * 8;
        v = BigInt(r.kflag ? this.dv.getInt32(p + 4, true) : this.dv.getUint32(p + 4, true));
      } else {
        p = r.trailer + i * 12;
        const u = (BigInt(this.dv.getUint32(p + 8, true)) << 32n) | BigInt(this.dv.getUint32(p + 4, true));
        v = r.kflag ? BigInt.asIntN(64, u) : u;
      }
      out.set(this.str(this.dv.getUint32(p, true)), v);
    }
    return out;
  }
}

/**
 * DATASEC layout of a clang-built object with the gaps filled from ELF.
 *
 * What clang 14 emits (checked on test/fixtures/btf_fixture.bpf.c with
 * `bpftool btf dump file` and `llvm-readelf -s`): every DATASEC (.rodata,
 * .bss, license) has size=0, and every *global* var has offset=0 while its
 * secinfo size is correct; `static` vars do get their real offsets. The real
 * global offsets exist only in the symbol table (cfg_mode st_value 0, cfg_tag
 * st_value 8 in .rodata, both STT_OBJECT) and the section size only in the
 * section header. libbpf patches this at open time (btf_fixup_datasec); we do
 * the same so user space can write config values into .rodata before load.
 * Symbol values win whenever a symbol exists (static ones agree anyway); a
 * size disagreeing between BTF and symtab, a var past the section end, or
 * overlapping vars is an error rather than a guess.
 */
export function datasecFromElf(obj: Uint8Array, secName: string, btf: Btf = Btf.fromElf(obj)): BtfDatasec {
  const ds = btf.datasec(secName);
  const sec = elfSections(obj).find((s) => s.index !== 0 && s.name === secName);
  if (!sec) throw new BtfError(`ELF: no section '${secName}' to match BTF DATASEC`);
  const syms = new Map<string, { value: number; size: number }>();
  for (const s of elfSymbols(obj)) {
    if (s.shndx === sec.index && s.type === STT_OBJECT && s.name !== "") syms.set(s.name, s);
  }
  const size = ds.size !== 0 ? ds.size : sec.size;
  if (ds.size !== 0 && ds.size !== sec.size) {
    throw new BtfError(`BTF: DATASEC '${secName}' size ${ds.size} != ELF section size ${sec.size}`);
  }
  const vars = ds.vars.map((v): BtfVar => {
    const sym = syms.get(v.name);
    if (!sym) return v;
    if (v.size !== 0 && sym.size !== 0 && v.size !== sym.size) {
      throw new BtfError(`'${secName}' var '${v.name}': BTF size ${v.size} != symbol size ${sym.size}`);
    }
    return { ...v, offset: sym.value, size: v.size !== 0 ? v.size : sym.size };
  });
  vars.sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < vars.length; i++) {
    const v = vars[i]!;
    if (v.offset + v.size > size) throw new BtfError(`'${secName}' var '${v.name}' ends past section size ${size}`);
    const next = vars[i + 1];
    if (next && v.offset + v.size > next.offset) {
      throw new BtfError(`'${secName}' vars '${v.name}' and '${next.name}' overlap (offsets not fixed up?)`);
    }
  }
  return { size, vars };
}
