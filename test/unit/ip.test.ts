/** Socket addresses as text (src/render/ip.ts): IPv4 dotted, IPv6 in RFC 5952's canonical form, as %pI6c prints it. */
import { expect, test } from "bun:test";
import { ipText } from "../../src/render/ip.ts";

/** An address's bytes as the two little-endian words a record carries. */
function words(bytes: number[]): [bigint, bigint] {
  const dv = new DataView(new Uint8Array([...bytes, ...Array(16 - bytes.length).fill(0)]).buffer);
  return [dv.getBigUint64(0, true), dv.getBigUint64(8, true)];
}

const CASES: Array<[number, number[], string]> = [
  [2, [127, 0, 0, 1], "127.0.0.1"],
  [2, [10, 255, 255, 53], "10.255.255.53"],
  [10, [...Array(15).fill(0), 1], "::1"],
  [10, Array(16).fill(0), "::"],
  [10, [0x20, 1, 0x0d, 0xb8, ...Array(11).fill(0), 1], "2001:db8::1"],
  // The longest run of zero groups is compressed; the first of equal runs; a single zero group is not.
  [10, [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], "2001:db8:0:1::1"],
  [10, [0x20, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], "2001:0:0:1::1"],
  [10, [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1], "2001:db8:0:1:1:1:1:1"],
  [10, [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0x56, 0x78], "fe80::1234:0:0:5678"],
  // IPv4-mapped: the dotted quad, as the kernel prints it.
  [10, [...Array(10).fill(0), 0xff, 0xff, 10, 1, 2, 3], "::ffff:10.1.2.3"],
];

for (const [family, bytes, want] of CASES) {
  test(`${want}`, () => {
    const [w0, w1] = words(bytes);
    expect(ipText(family, w0, w1)).toBe(want);
  });
}

test("a family that is not inet or inet6 has no text", () => {
  expect(ipText(1, 1n, 2n)).toBe("");
});
