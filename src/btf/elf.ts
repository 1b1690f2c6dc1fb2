/**
 * Minimal ELF64 little-endian reader: just enough to pull `.BTF` and the
 * symbol table out of a clang-built BPF object (ET_REL) or a shared object.
 * Every field read from the file is validated before use because the bytes
 * may be truncated or corrupt; failures throw BtfError, never RangeError.
 */
import { BtfError } from "./error.ts";

export { BtfError };

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  /** File offset of the data; meaningless for SHT_NOBITS. */
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

export interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  shndx: number;
  /** Name of section `shndx`, or undefined for UNDEF/ABS/COMMON and other reserved indices. */
  sectionName: string | undefined;
  /** STT_* (low nibble of st_info). */
  type: number;
  /** STB_* (high nibble of st_info). */
  bind: number;
}

export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOBITS = 8;
export const SHT_SYMTAB_SHNDX = 18;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const SHN_LORESERVE = 0xff00;
const SHN_XINDEX = 0xffff;
const ET_REL = 1;
const ET_DYN = 3;

const utf8 = new TextDecoder("utf-8");

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** u64 fields are offsets/sizes; anything beyond 2^53 cannot be inside a JS buffer anyway. */
function u64(dv: DataView, off: number, what: string): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BtfError(`ELF: ${what} too large (${v})`);
  return Number(v);
}

function checkRange(bytes: Uint8Array, off: number, size: number, what: string): void {
  if (off < 0 || size < 0 || off > bytes.length || size > bytes.length - off) {
    throw new BtfError(`ELF: ${what} [${off}, +${size}) lies outside the ${bytes.length}-byte file`);
  }
}

/** Reads a NUL-terminated string that must end inside `table`. */
export function cstring(table: Uint8Array, off: number, what: string): string {
  if (!Number.isInteger(off) || off < 0 || off >= table.length) {
    throw new BtfError(`${what}: string offset ${off} outside ${table.length}-byte string table`);
  }
  const end = table.indexOf(0, off);
  if (end < 0) throw new BtfError(`${what}: string at ${off} is not NUL-terminated`);
  return utf8.decode(table.subarray(off, end));
}

interface ParsedElf {
  sections: ElfSection[];
}

// Objects are usually parsed several times per load (BTF, symbols, sections);
// caching by buffer identity keeps that cheap without changing semantics.
const cache = new WeakMap<Uint8Array, ParsedElf>();

function parse(bytes: Uint8Array): ParsedElf {
  const hit = cache.get(bytes);
  if (hit) return hit;
  if (bytes.length < EHDR_SIZE) throw new BtfError(`ELF: file too short (${bytes.length} bytes)`);
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new BtfError("ELF: bad magic (not an ELF file)");
  }
  if (bytes[4] !== 2) throw new BtfError(`ELF: only ELFCLASS64 is supported (class ${bytes[4]})`);
  if (bytes[5] !== 1) throw new BtfError(`ELF: only little-endian is supported (data ${bytes[5]})`);
  if (bytes[6] !== 1) throw new BtfError(`ELF: unknown ident version ${bytes[6]}`);
  const dv = view(bytes);
  const type = dv.getUint16(16, true);
  if (type < ET_REL || type > ET_DYN) throw new BtfError(`ELF: unsupported e_type ${type}`);
  const shoff = u64(dv, 0x28, "e_shoff");
  const shentsize = dv.getUint16(0x3a, true);
  let shnum = dv.getUint16(0x3c, true);
  let shstrndx = dv.getUint16(0x3e, true);
  if (shoff === 0) throw new BtfError("ELF: no section header table");
  if (shentsize !== SHDR_SIZE) throw new BtfError(`ELF: e_shentsize ${shentsize}, expected ${SHDR_SIZE}`);
  checkRange(bytes, shoff, SHDR_SIZE, "section header 0");
  // Extended numbering: counts too big for the 16-bit fields live in section 0.
  if (shnum === 0) shnum = u64(dv, shoff + 32, "extended e_shnum");
  if (shstrndx === SHN_XINDEX) shstrndx = dv.getUint32(shoff + 40, true);
  if (shnum === 0) throw new BtfError("ELF: no sections");
  if (shnum > (bytes.length - shoff) / SHDR_SIZE) {
    throw new BtfError(`ELF: ${shnum} section headers do not fit in the file`);
  }
  if (shstrndx === 0 || shstrndx >= shnum) throw new BtfError(`ELF: e_shstrndx ${shstrndx} out of range`);

  const raw: Omit<ElfSection, "name">[] = [];
  const nameOffs: number[] = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * SHDR_SIZE;
    const sec = {
      index: i,
      type: dv.getUint32(h + 4, true),
      flags: dv.getBigUint64(h + 8, true),
      offset: u64(dv, h + 24, `section ${i} sh_offset`),
      size: u64(dv, h + 32, `section ${i} sh_size`),
      link: dv.getUint32(h + 40, true),
      info: dv.getUint32(h + 44, true),
      entsize: u64(dv, h + 56, `section ${i} sh_entsize`),
    };
    // Section 0 is the reserved null entry; with extended numbering its
    // size field holds a count, not a data range.
    if (i !== 0 && sec.type !== SHT_NOBITS) checkRange(bytes, sec.offset, sec.size, `section ${i} data`);
    raw.push(sec);
    nameOffs.push(dv.getUint32(h, true));
  }
  const strSec = raw[shstrndx]!;
  if (strSec.type !== SHT_STRTAB) throw new BtfError(`ELF: section-name table (section ${shstrndx}) is not SHT_STRTAB`);
  const shstrtab = bytes.subarray(strSec.offset, strSec.offset + strSec.size);
  const sections = raw.map((s, i) => ({
    ...s,
    name: i === 0 ? "" : cstring(shstrtab, nameOffs[i]!, `ELF section ${i} name`),
  }));
  const parsed = { sections };
  cache.set(bytes, parsed);
  return parsed;
}

/** All section headers, index 0 (the null section) included. */
export function elfSections(bytes: Uint8Array): ElfSection[] {
  return parse(bytes).sections;
}

/**
 * Data of the first section called `name` as a view into `bytes` (no copy).
 * SHT_NOBITS sections (.bss) occupy no file bytes, so they yield an empty view;
 * use elfSections() for their size.
 */
export function elfSection(bytes: Uint8Array, name: string): Uint8Array | undefined {
  const sec = parse(bytes).sections.find((s) => s.index !== 0 && s.name === name);
  if (!sec) return undefined;
  if (sec.type === SHT_NOBITS) return bytes.subarray(0, 0);
  return bytes.subarray(sec.offset, sec.offset + sec.size);
}

/** Entries of `.symtab` (the null symbol 0 is skipped); empty if the object has no symbol table. */
export function elfSymbols(bytes: Uint8Array): ElfSymbol[] {
  const { sections } = parse(bytes);
  const symtab = sections.find((s) => s.index !== 0 && s.type === SHT_SYMTAB);
  if (!symtab) return [];
  if (symtab.entsize !== SYM_SIZE) throw new BtfError(`ELF: .symtab entsize ${symtab.entsize}, expected ${SYM_SIZE}`);
  if (symtab.size % SYM_SIZE !== 0)
    throw new BtfError(`ELF: .symtab size ${symtab.size} not a multiple of ${SYM_SIZE}`);
  const strSec = sections[symtab.link];
  if (!strSec || strSec.index === 0 || strSec.type !== SHT_STRTAB) {
    throw new BtfError(`ELF: .symtab sh_link ${symtab.link} is not a string table`);
  }
  const strtab = bytes.subarray(strSec.offset, strSec.offset + strSec.size);
  // Symbols whose section index does not fit 16 bits keep it in a side table.
  const xsec = sections.find((s) => s.index !== 0 && s.type === SHT_SYMTAB_SHNDX && s.link === symtab.index);
  const xdv = xsec ? new DataView(bytes.buffer, bytes.byteOffset + xsec.offset, xsec.size) : undefined;

  const dv = view(bytes);
  const out: ElfSymbol[] = [];
  const count = symtab.size / SYM_SIZE;
  for (let i = 1; i < count; i++) {
    const s = symtab.offset + i * SYM_SIZE;
    const info = dv.getUint8(s + 4);
    let shndx = dv.getUint16(s + 6, true);
    let inSection = shndx !== 0 && shndx < SHN_LORESERVE;
    if (shndx === SHN_XINDEX) {
      if (!xdv || (i + 1) * 4 > xdv.byteLength)
        throw new BtfError(`ELF: symbol ${i} needs a missing SHT_SYMTAB_SHNDX entry`);
      shndx = xdv.getUint32(i * 4, true);
      inSection = true;
    }
    if (inSection && shndx >= sections.length)
      throw new BtfError(`ELF: symbol ${i} section index ${shndx} out of range`);
    out.push({
      name: cstring(strtab, dv.getUint32(s, true), `ELF symbol ${i} name`),
      value: u64(dv, s + 8, `symbol ${i} st_value`),
      size: u64(dv, s + 16, `symbol ${i} st_size`),
      shndx,
      sectionName: inSection ? sections[shndx]!.name : undefined,
      type: info & 0xf,
      bind: info >> 4,
    });
  }
  return out;
}
