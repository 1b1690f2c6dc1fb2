/**
 * Socket addresses as text, from the two little-endian u64 words a record
 * carries them in (struct ds_sock_data: bytes 0-7 and 8-15 of the address in
 * network order). IPv6 in RFC 5952's canonical form, as the kernel's %pI6c
 * prints it: lower-case, the longest run of two or more zero groups as "::",
 * an IPv4-mapped address with its dotted quad.
 */

/** One scratch view: the words become bytes without a BigInt shift per byte (this runs per record). */
const SCRATCH = new DataView(new ArrayBuffer(16));
const SCRATCH_BYTES = new Uint8Array(SCRATCH.buffer);

function bytesOf(w0: bigint, w1: bigint): Uint8Array {
  SCRATCH.setBigUint64(0, BigInt.asUintN(64, w0), true);
  SCRATCH.setBigUint64(8, BigInt.asUintN(64, w1), true);
  return SCRATCH_BYTES;
}

function dotted(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${dotted(b, 12)}`;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** "" for a family that is neither AF_INET (2) nor AF_INET6 (10). */
export function ipText(family: number, w0: bigint, w1: bigint): string {
  const b = bytesOf(w0, w1);
  if (family === 2) return dotted(b, 0);
  if (family === 10) return ipv6(b);
  return "";
}

export const FAMILY_NAMES: Readonly<Record<number, string>> = { 2: "inet", 10: "inet6" };
export const PROTOCOL_NAMES: Readonly<Record<number, string>> = {
  6: "tcp",
  17: "udp",
  132: "sctp",
  1: "icmp",
  58: "icmpv6",
};
