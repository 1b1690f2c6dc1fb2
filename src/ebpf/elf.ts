/**
 * The section table of a BPF object (a little-endian ELF64 file), as much of
 * it as the build and the loader read: names, types, flags and where each
 * section's bytes lie, every offset checked against the file; and its symbols
 * and relocations, which the build reads to count each program's instructions.
 */

export interface ElfSection {
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  /** sh_link and sh_info: for a symbol table its names' section; for relocations the symbols' and the target's. */
  readonly link: number;
  readonly info: number;
  /** The section's bytes are elf[start, end); SHT_NOBITS sections have none. */
  readonly start: number;
  readonly end: number;
}

export const SHT_PROGBITS = 1;
export const SHT_NOBITS = 8;
export const SHF_EXECINSTR = 0x4;

const ELF_HEADER = 64;
const SECTION_HEADER = 64;

export function elfSections(elf: Uint8Array): ElfSection[] {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.length < ELF_HEADER || v.getUint32(0, false) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1)
    throw new Error("not a little-endian ELF64 object");
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const strndx = v.getUint16(0x3e, true);
  if (shentsize < SECTION_HEADER || shoff + shnum * shentsize > elf.length || strndx >= shnum)
    throw new Error("the ELF object's section headers lie outside it");
  const header = (i: number) => shoff + i * shentsize;
  const range = (h: number, type: number) => {
    const start = Number(v.getBigUint64(h + 0x18, true));
    const end = type === SHT_NOBITS ? start : start + Number(v.getBigUint64(h + 0x20, true));
    if (end > elf.length || end < start) throw new Error("an ELF section lies outside the object");
    return { start, end };
  };
  const names = range(header(strndx), v.getUint32(header(strndx) + 4, true));
  const sections: ElfSection[] = [];
  for (let i = 0; i < shnum; i++) {
    const h = header(i);
    const type = v.getUint32(h + 4, true);
    sections.push({
      name: stringAt(elf, names, v.getUint32(h, true), `ELF section ${i}'s name`),
      type,
      flags: Number(v.getBigUint64(h + 8, true)),
      link: v.getUint32(h + 0x28, true),
      info: v.getUint32(h + 0x2c, true),
      ...range(h, type),
    });
  }
  return sections;
}

/** The NUL-terminated string at `offset` in a string table, checked to end inside it. */
function stringAt(elf: Uint8Array, table: { start: number; end: number }, offset: number, what: string): string {
  const at = table.start + offset;
  const nul = elf.indexOf(0, at);
  if (at >= table.end || nul < 0 || nul >= table.end) throw new Error(`${what} lies outside its string table`);
  return new TextDecoder().decode(elf.subarray(at, nul));
}

/** The bytes of the section called `name`, or null. */
export function elfSection(elf: Uint8Array, name: string): Uint8Array | null {
  const s = elfSections(elf).find((x) => x.name === name);
  return s === undefined ? null : elf.subarray(s.start, s.end);
}

export interface ElfSymbol {
  readonly name: string;
  /** STT_FUNC, STT_SECTION, ... (the low nibble of st_info). */
  readonly type: number;
  /** The section it is in (st_shndx). */
  readonly section: number;
  readonly value: number;
  readonly size: number;
}

export const SHT_SYMTAB = 2;
export const SHT_REL = 9;
export const STT_FUNC = 2;
const SYMBOL = 24;
const REL = 16;

/** The symbol table (.symtab), every entry checked against the file. */
export function elfSymbols(elf: Uint8Array, sections: readonly ElfSection[]): ElfSymbol[] {
  const tab = sections.find((s) => s.type === SHT_SYMTAB);
  const names = tab === undefined ? undefined : sections[tab.link];
  if (tab === undefined || names === undefined) return [];
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const out: ElfSymbol[] = [];
  for (let at = tab.start; at + SYMBOL <= tab.end; at += SYMBOL) {
    out.push({
      name: stringAt(elf, names, v.getUint32(at, true), "an ELF symbol's name"),
      type: elf[at + 4]! & 0xf,
      section: v.getUint16(at + 6, true),
      value: Number(v.getBigUint64(at + 8, true)),
      size: Number(v.getBigUint64(at + 16, true)),
    });
  }
  return out;
}

/** A SHT_REL section's entries: where (r_offset, in the target section) and which symbol. */
export function elfRelocations(elf: Uint8Array, rel: ElfSection): Array<{ offset: number; symbol: number }> {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const out: Array<{ offset: number; symbol: number }> = [];
  for (let at = rel.start; at + REL <= rel.end; at += REL) {
    out.push({ offset: Number(v.getBigUint64(at, true)), symbol: Number(v.getBigUint64(at + 8, true) >> 32n) });
  }
  return out;
}
