/**
 * Synthetic DS_RECORD_HEAD records (connect, dns, create_file, ...), written at
 * the offsets of the generated layout: scalars by their dotted member path, as
 * the decoder names them (`dns.sock.family`), strings packed after the struct
 * as emit_record() packs them (bpf/dual_slot.h). Defaults mimic an intact
 * dual-slot perf record; any member can be set to what the kernel never writes.
 */
import { putStrings } from "../../src/render/warm-up.ts";
import { type EventSpec, memberAt } from "../../src/wire/events.ts";
import * as layout from "../../src/wire/layout.gen.ts";
import { ds_flags, ds_header, ds_wire_const } from "../../src/wire/layout.gen.ts";
import { Encoding, Mode, Transport } from "../../src/wire/names.ts";
import { type Bytes, bytesOf } from "./synth.ts";

export interface RecordSynth {
  ktimeNs?: bigint;
  seq?: bigint;
  cpu?: number;
  mode?: number;
  transport?: number;
  slots?: number;
  /** Scalars by dotted path (`pid`, `common.euid`, `connect.sip_0`): they win over the defaults. */
  members?: Record<string, number | bigint>;
  /** Strings by name (spec.strings); missing ones are empty, comm and exe have defaults. */
  strings?: Record<string, Bytes>;
}

const DEFAULTS: Record<string, number | bigint> = {
  pid: 18201,
  tid: 18201,
  ppid: 18100,
  uid: 1000,
  gid: 1000,
  flags: ds_flags.DS_F_SLOT1_INTACT,
  cgroup_id: 4242n,
  "common.euid": 1000,
  "common.egid": 1000,
  "common.pgid": 18201,
  "common.sid": 18000,
  "common.sessionid": 3,
  "common.auid": 1000,
  "common.pidns_id": 4026531836,
  "common.mntns_id": 4026531841,
  "common.start_ns": 123_000_000_000n,
  "common.exec_seq": 7n,
  "common.pstart_ns": 100_000_000_000n,
  "common.pexec_seq": 6n,
};

/** Writes v at a member of the given kind, as the kernel's C types hold it. */
function setMember(dv: DataView, off: number, kind: string, v: number | bigint): void {
  switch (kind) {
    case "u8":
    case "s8":
      dv.setUint8(off, Number(BigInt.asUintN(8, BigInt(v))));
      return;
    case "u16":
    case "s16":
      dv.setUint16(off, Number(BigInt.asUintN(16, BigInt(v))), true);
      return;
    case "u32":
    case "s32":
      dv.setUint32(off, Number(BigInt.asUintN(32, BigInt(v))), true);
      return;
    case "u64":
    case "s64":
      dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
      return;
    default:
      throw new Error(`synth: member of kind ${kind} is not a scalar`);
  }
}

export function synthRecord(spec: EventSpec, o: RecordSynth = {}): Uint8Array {
  const st = spec.struct;
  const text: Record<string, Bytes> = { comm: "bash", exe: "/usr/bin/bash", ...o.strings };
  const strs = spec.strings.map((n) => bytesOf(text[n]));
  const size = st.size + strs.reduce((a, s) => a + s.length, 0);
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  const H = ds_header.off;
  dv.setBigUint64(H.ktime_ns, o.ktimeNs ?? 123_456_789_000n, true);
  dv.setBigUint64(H.seq, o.seq ?? 42n, true);
  dv.setUint32(H.size, size, true);
  dv.setUint16(H.type, spec.type, true);
  b[H.version] = ds_wire_const.DS_WIRE_VERSION;
  b[H.encoding] = Encoding.compact;
  dv.setUint32(H.cpu, o.cpu ?? 3, true);
  b[H.mode] = o.mode ?? Mode.dual;
  b[H.slots] = o.slots ?? 2;
  b[H.transport] = o.transport ?? Transport.perf;
  for (const [path, v] of Object.entries({ ...DEFAULTS, ...o.members })) {
    const m = memberAt(st, path);
    if (m === undefined) throw new Error(`synth: ${spec.name} has no member ${path}`);
    setMember(dv, m.off, m.kind, v);
  }
  putStrings(spec, b, strs);
  return b;
}

type Rng = () => number;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const u32 = (r: Rng) => (int(r, 0x10000) * 0x10000 + int(r, 0x10000)) >>> 0;
const u64 = (r: Rng): bigint => (BigInt(u32(r)) << 32n) | BigInt(u32(r));

/** Every scalar member of a struct by dotted path and kind, the header aside (as the decoder reads them). */
export function scalarMembers(spec: EventSpec): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const walk = (path: string, st: EventSpec["struct"]) => {
    for (const [name, kind] of Object.entries(st.kind)) {
      if (path === "" && (name === "hdr" || name === "str")) continue;
      const inner = STRUCTS.get(kind);
      if (inner !== undefined) walk(`${path}${name}.`, inner);
      else if (/^[us](8|16|32|64)$/.test(kind)) out.push([path + name, kind]);
    }
  };
  walk("", spec.struct);
  return out;
}

const STRUCTS = new Map(
  Object.entries(layout).flatMap(
    ([name, v]): Array<[string, EventSpec["struct"]]> =>
      typeof v === "object" && v !== null && "kind" in v && "off" in v ? [[name, v as EventSpec["struct"]]] : [],
  ),
);

/** An address as ds_sock_data holds it: bytes 0-7 and 8-15 (network order) as two little-endian u64 words. */
export function addrWords(bytes: readonly number[]): [bigint, bigint] {
  const b = new Uint8Array(16);
  b.set(bytes.slice(0, 16));
  const dv = new DataView(b.buffer);
  return [dv.getBigUint64(0, true), dv.getBigUint64(8, true)];
}

function randomAddr(r: Rng): number[] {
  const g = (n: number) => [n >> 8, n & 0xff];
  const rnd = () => int(r, 0x10000);
  switch (int(r, 9)) {
    case 0:
      return [10, 0, int(r, 256), int(r, 256)];
    case 1:
      return [127, 0, 0, 1];
    case 2:
      return [...g(0), ...g(0), ...g(0), ...g(0), ...g(0), ...g(0xffff), int(r, 256), 0, 0, int(r, 256)];
    case 3:
      return [...g(0x2001), ...g(0xdb8), ...g(0), ...g(0), ...g(0), ...g(0), ...g(0), ...g(1)];
    case 4:
      return [...g(0xfe80), 0, 0, 0, 0, 0, 0, ...g(rnd()), ...g(rnd()), ...g(rnd()), ...g(rnd())];
    case 5:
      return [];
    case 6:
      return [...Array(15).fill(0), 1];
    case 7:
      // Zero groups here and there: which run becomes "::" (the first longest, two or more).
      return Array.from({ length: 8 }, () => (r() < 0.5 ? 0 : pick(r, [1, 0xabc, rnd()]))).flatMap(g);
    default:
      return Array.from({ length: 16 }, () => int(r, 256));
  }
}

const PATHS = ["/tmp/x", "/home/user/.cache/a b", "/etc/ld.so.preload", "/var/lib/x/y.db", "./rel/../x", "", "/"];
const NAMES = ["example.com", "a.b.c.internal", "localhost", "", "x", "Zz-9.io"];
const COMMS = ["bash", "curl", "systemd-journal", "sshd", "x", "fifteen-chars-x", "sixteen-chars-xx"];
const PRINTABLE = Array.from({ length: 95 }, (_, i) => 0x20 + i);
const HOSTILE = [...PRINTABLE, 0, 0x1b, 0x0a, 0x7f, 0x80, 0xbf, 0xc2, 0x9b, 0xc3, 0xa9, 0xe2, 0x80, 0xae, 0xed, 0xf0];

function text(r: Rng, name: string, ordinary: boolean): Uint8Array {
  const enc = new TextEncoder();
  if (ordinary || r() < 0.8) {
    if (name === "comm") return enc.encode(pick(r, COMMS));
    if (name === "nodename") return enc.encode(pick(r, ["", "vm", "web-1.example"]));
    if (name === "pid_tree") return enc.encode(pick(r, ["", "12.sh<1.init", "30209.curl<5243.bash<1.systemd"]));
    if (name === "name" || name.endsWith("_name")) return enc.encode(pick(r, NAMES));
    if (name === "fs_type") return enc.encode(pick(r, ["", "tmpfs", "ext4", "proc"]));
    return enc.encode(pick(r, [...PATHS, "/usr/bin/bash", "/opt/ünï/x", 'a"b', "c\\d", "/p/".repeat(30)]));
  }
  const n = int(r, name === "comm" ? 20 : 100);
  const alphabet = r() < 0.5 ? PRINTABLE : HOSTILE;
  return Uint8Array.from({ length: n }, () => pick(r, alphabet));
}

/** A member's value: what a host's records hold when `ordinary`, else anything its kind can hold. */
function value(r: Rng, path: string, kind: string, ordinary: boolean): number | bigint {
  const name = path.slice(path.lastIndexOf(".") + 1);
  const wide = kind.endsWith("64");
  // Now and then anything at all: past 2^53, negative for a signed member.
  if (!ordinary && r() < 0.03) return wide ? u64(r) : u32(r);
  switch (name) {
    case "family":
      return pick(r, ordinary ? [2, 10] : [2, 10, 0, 1, 44]);
    case "protocol":
      return pick(r, ordinary ? [6, 17] : [6, 17, 0, 1, 58, 132, 255]);
    case "sport":
    case "dport":
      return pick(r, [0, 53, 443, 8080, int(r, 0x10000)]);
    case "fd":
      return pick(r, [0, 3, 17, -1, int(r, 1024)]);
    case "res":
      return BigInt(pick(r, [0, 0, 3, 512, -2, -13, -115, ordinary ? 4 : -(2 ** 31)]));
    case "syscall":
      return pick(r, [42, 43, 44, 49, 82, 257, 316, 165, 101, 62, 112, 157, 319, 175, 313, 288, 999]);
    case "qtype":
      return pick(r, [1, 28, 5, 12, 15, 16, 33, 65, 255, 99, int(r, 0x10000)]);
    case "qr":
      return pick(r, ordinary ? [0, 1] : [0, 1, 2]);
    case "rcode":
      return pick(r, ordinary ? [0, 3] : [0, 2, 3, 5, 6, 15]);
    case "qclass":
      return pick(r, [1, 1, 3]);
    case "mode":
      return pick(r, [0x1000, 0x2000, 0x4000, 0x6000, 0x8000, 0xa000, 0xc000, 0xe000, 0]) | int(r, 0x1000);
    case "kind":
      return pick(r, ordinary ? [1, 2] : [0, 1, 2, 3]);
    case "how":
      return pick(r, ordinary ? [1, 2] : [0, 1, 2, 7]);
    case "request":
      return BigInt(pick(r, [4, 5, 6, 13, 16, 16901, 16902, 0, 24, -1]));
    case "addr":
    case "data":
    case "cap_effective_old":
    case "cap_effective_new":
      return pick(r, [0n, 0x1ffn, 0x7fffffffn, 0x1ffffffffffn, 0xffffffffffffffffn, u64(r)]);
    case "sig":
    case "target_pid":
    case "target_tid":
      return pick(r, [0, 9, 15, -1, -1234, int(r, 4_000_000)]);
    case "flags":
      return ds_flags.DS_F_SLOT1_INTACT | (r() < 0.1 ? ds_flags.DS_F_STR_TRUNCATED : 0);
    case "pad":
    case "pad0":
      return 0;
  }
  if (path.includes("ip_")) return 0; // set from an address below
  if (wide) return ordinary ? BigInt(int(r, 2 ** 40)) * 1000n : pick(r, [0n, BigInt(int(r, 2 ** 53)), 2n ** 53n - 1n]);
  if (kind === "u16" || kind === "s16") return int(r, 0x10000);
  if (kind === "u8" || kind === "s8") return int(r, 256);
  return pick(r, [0, 1000, int(r, 4_000_000), u32(r)]);
}

/**
 * A record of one DS_RECORD_HEAD type. `ordinary`: what a host emits (the
 * compiled path's case); otherwise hostile strings, any flags, modes and
 * 64-bit values, and now and then a damaged byte.
 */
export function sampleRecord(r: Rng, spec: EventSpec, ordinary: boolean): Uint8Array {
  const members: Record<string, number | bigint> = {};
  for (const [path, kind] of scalarMembers(spec)) members[path] = value(r, path, kind, ordinary);
  for (const [path] of scalarMembers(spec))
    if (path.endsWith("sip_0") || path.endsWith("dip_0")) {
      const [w0, w1] = addrWords(randomAddr(r));
      members[path] = w0;
      members[`${path.slice(0, -1)}1`] = w1;
    }
  if (!ordinary) members.flags = r() < 0.3 ? u32(r) & 0xffff : ds_flags.DS_F_SLOT1_INTACT;
  const strings: Record<string, Uint8Array> = {};
  for (const n of spec.strings) strings[n] = text(r, n, ordinary);
  const b = synthRecord(spec, {
    ktimeNs: ordinary || r() < 0.9 ? BigInt(int(r, 2 ** 45)) : pick(r, [u64(r), BigInt(int(r, 2 ** 52))]),
    seq: ordinary || r() < 0.9 ? BigInt(int(r, 2 ** 32)) : u64(r),
    cpu: int(r, 4),
    mode: ordinary || r() < 0.8 ? Mode.dual : pick(r, [Mode.single, Mode.nest3]),
    transport: pick(r, [Transport.perf, Transport.ringbuf, Transport["ringbuf-output"]]),
    members,
    strings,
  });
  if (!ordinary && r() < 0.1) for (let k = 0; k < 3; k++) b[int(r, b.length)] = int(r, 256);
  return b;
}
