/**
 * The section table of a BPF object (a little-endian ELF64 file), as much of
 * it as the build and the loader read: names, types, flags and where each
 * section's bytes lie, every offset checked against the file.
 */

export interface ElfSection {
  readonly name: string;
  readonly type: number;
  readonly flags: number;
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
    const at = names.start + v.getUint32(h, true);
    const nul = elf.indexOf(0, at);
    if (at >= names.end || nul < 0 || nul >= names.end)
      throw new Error(`ELF section ${i}'s name lies outside the names`);
    sections.push({
      name: new TextDecoder().decode(elf.subarray(at, nul)),
      type,
      flags: Number(v.getBigUint64(h + 8, true)),
      ...range(h, type),
    });
  }
  return sections;
}

/** The bytes of the section called `name`, or null. */
export function elfSection(elf: Uint8Array, name: string): Uint8Array | null {
  const s = elfSections(elf).find((x) => x.name === name);
  return s === undefined ? null : elf.subarray(s.start, s.end);
}
