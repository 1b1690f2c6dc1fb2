/**
 * Synthetic records for the warm-up (Session.warmUp): intact dual-slot
 * records of each event type the session selected, built from the layout,
 * with values shaped like a host's. The JIT speculates on what it has seen
 * (ints below 2^31, empty strings, one object shape); a record outside that
 * costs a deoptimization and a recompile in the middle of the first burst, so
 * every branch a real record takes is taken here.
 */
import { hostname } from "node:os";
import { EVENTS, type EventSpec, memberAt } from "../wire/events.ts";
import { ds_common, ds_exec, ds_flags, ds_header, ds_level, ds_wire_const } from "../wire/layout.gen.ts";
import { Encoding, type EventName, Mode, Transport } from "../wire/names.ts";
import { STREAK } from "./memo.ts";

const enc = new TextEncoder();
const H = ds_header.off;
const L = ds_level.off;
const F = ds_flags;

/** Host-like text per string, per variant: what real exec records carry (quotes, spaces, empty pexe...). */
const WARM_TEXT: Record<string, readonly string[]> = {
  comm: ["true", "bash", "systemd-journal", "x"],
  filename: ["/bin/true", "/usr/bin/bash", "/usr/lib/systemd/systemd-journald", "./x"],
  args: [
    "/bin/true\0",
    'bash\0-c\0echo "$HOME"\0it\'s\0',
    "/usr/lib/systemd/systemd-journald\0--flag=a,b\0/some path/with spaces\0x\0",
    "",
  ],
  cwd: ["/", "/home/user/work", "/var/lib/some/deeper/directory", "/tmp"],
  exe: ["/usr/bin/true", "/usr/bin/bash", "/usr/lib/systemd/systemd-journald", "/tmp/x"],
  pexe: ["/usr/bin/bash", "", "/usr/lib/systemd/systemd", ""],
  tty: ["", "pts0", "", "ttyS0"],
  stdin: ["/dev/null", "/dev/pts/0", "pipe:[81234]", "socket:[4026531999]"],
  stdout: ["pipe:[81235]", "/dev/pts/0", "…/nginx/a-long-log-name.log", "socket:[4026531999]"],
  sip: ["", "", "", "10.0.0.12"],
  dip: ["", "", "", "203.0.113.7"],
  ssh: ["", "10.1.2.3 50022 10.1.2.4 22", "", ""],
  ld_preload: ["", "", "", "/tmp/x.so"],
  pid_tree: [
    "30209.true<30198.bash<30197.bash<5243.bash<1.systemd",
    "4194303.bash<1.systemd",
    "812.systemd-journal<1.systemd",
    "7.x<6.sh<5.sh<4.sh<3.sh<2.sh<1.init",
  ],
};

/** Scalars per variant, in the ranges real records have: small and large ids, u32s past 2^31, ns clocks past 2^32. */
const WARM_SCALARS: Record<string, readonly number[]> = {
  pid: [30209, 4194303, 812, 7],
  tid: [30209, 4194303, 815, 7],
  ppid: [30198, 1, 1, 6],
  uid: [0, 1000, 0, 65534],
  gid: [0, 1000, 0, 65534],
  cgroup_id: [1, 4294967296 * 3 + 17, 8123, 0],
  "common.euid": [0, 1000, 0, 65534],
  "common.egid": [0, 1000, 0, 65534],
  "common.pgid": [30198, 4194303, 812, 5],
  "common.sid": [5243, 4194000, 812, 5],
  "common.sessionid": [4294967295, 3, 4294967295, 12],
  "common.auid": [4294967295, 1000, 4294967295, 0],
  "common.pidns_id": [4026531836, 4026532451, 4026531836, 4026531836],
  "common.mntns_id": [4026531832, 4026532449, 4026531841, 4026531832],
  "common.start_ns": [19310693328111, 5000000000, 91000000, 19310693328111],
  "common.exec_seq": [4, 1, 2, 9],
  "common.pstart_ns": [19309689686071, 1000000, 1000000, 19309689686071],
  "common.pexec_seq": [3, 1, 1, 8],
  exe_dev: [8388609, 8388609, 8388609, 48],
  exe_ino: [1234567, 4294967296 * 2 + 5, 812, 3],
  sa_family: [0, 0, 0, 2],
  sport: [0, 0, 0, 4444],
  dport: [0, 0, 0, 51234],
};

/** One warm-up record of a type: its own members (by dotted path), address bytes and strings. */
interface Variant {
  members: Record<string, number>;
  /** 16 address bytes at an address member (`connect.sip_0`), in network order. */
  addrs?: Record<string, readonly number[]>;
  text?: Record<string, string>;
}

const V4_LOCAL = [10, 0, 2, 15];
const V4_REMOTE = [93, 184, 216, 34];
const V6_LOCAL = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05];
const V6_REMOTE = [0x26, 0x06, 0x47, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x68, 0x12, 0x1a, 0x2b];
const V6_MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1];

/** A struct ds_sock_data's members and addresses at `sock`: IPv4 TCP, or IPv6 UDP. */
function sock(s: string, v6: boolean, sport: number, dport: number, fd: number): Variant {
  return {
    members: {
      [`${s}.family`]: v6 ? 10 : 2,
      [`${s}.protocol`]: v6 ? 17 : 6,
      [`${s}.sport`]: sport,
      [`${s}.dport`]: dport,
      [`${s}.fd`]: fd,
    },
    addrs: { [`${s}.sip_0`]: v6 ? V6_LOCAL : V4_LOCAL, [`${s}.dip_0`]: v6 ? V6_REMOTE : V4_REMOTE },
  };
}

function merge(...vs: Variant[]): Variant {
  return {
    members: Object.assign({}, ...vs.map((v) => v.members)),
    addrs: Object.assign({}, ...vs.map((v) => v.addrs ?? {})),
    text: Object.assign({}, ...vs.map((v) => v.text ?? {})),
  };
}

const ok = (syscall: number, res: number, text: Record<string, string> = {}, members: Record<string, number> = {}) => ({
  members: { syscall, res, ...members },
  text,
});

/**
 * Two variants per DS_RECORD_HEAD type (and exit), between them the branches
 * a host's records take: IPv4 and IPv6, a query and a reply, a socket or
 * none, a name a table has and one it has not, negative results.
 */
const WARM_RECORDS: Partial<Record<EventName, readonly [Variant, Variant]>> = {
  exit: [
    { members: { exit_code: 0, runtime_ns: 1234567 } },
    { members: { exit_code: 0x8b, runtime_ns: 4294967296 * 9 + 7 } },
  ],
  fork: [
    { members: { "fork.child_pid": 30210, "fork.child_start_ns": 19310693329000 } },
    { members: { "fork.child_pid": 4194301, "fork.child_start_ns": 5000001234 } },
  ],
  setsid: [ok(112, 30209), ok(112, -1)],
  prctl: [
    ok(157, 0, { old_name: "bash", new_name: "kworker/0:1" }, { "prctl.option": 15 }),
    ok(157, -14, { old_name: "x", new_name: "" }, { "prctl.option": 15 }),
  ],
  ptrace: [
    ok(101, 0, { target_exe: "/usr/bin/sleep" }, { "ptrace.request": 16, "ptrace.target_pid": 4242 }),
    ok(101, -1, {}, { "ptrace.request": 24, "ptrace.target_pid": 1, "ptrace.addr": 140737488347136 }),
  ],
  memfd_create: [
    ok(319, 3, { name: "x" }, { "memfd_create.mflags": 1 }),
    ok(319, -24, { name: "" }, { "memfd_create.mflags": 3 }),
  ],
  kill: [
    ok(62, 0, {}, { "kill.target_pid": 4242, "kill.sig": 15 }),
    ok(234, -3, {}, { "kill.target_pid": -1, "kill.target_tid": 4243, "kill.sig": 9 }),
  ],
  privilege_escalation: [
    ok(
      59,
      0,
      {},
      {
        "privilege_escalation.how": 1,
        "privilege_escalation.old.uid": 1000,
        "privilege_escalation.old.euid": 1000,
        "privilege_escalation.new.uid": 1000,
        "privilege_escalation.cap_effective_new": 2199023255551,
      },
    ),
    ok(
      105,
      0,
      {},
      {
        "privilege_escalation.how": 2,
        "privilege_escalation.old.uid": 1000,
        "privilege_escalation.old.suid": 0,
        "privilege_escalation.old.fsuid": 1000,
      },
    ),
  ],
  connect: [
    merge(ok(42, -115), sock("connect", false, 51234, 443, 3)),
    merge(ok(42, 0), sock("connect", true, 40000, 53, 17)),
  ],
  accept: [
    merge(ok(288, 5), sock("accept", false, 22, 51234, 3)),
    merge(ok(43, 7), sock("accept", true, 8080, 0, 4), { members: {}, addrs: { "accept.dip_0": V6_MAPPED } }),
  ],
  bind: [merge(ok(49, 0), sock("bind", false, 8080, 0, 3)), merge(ok(49, -98), sock("bind", true, 0, 0, 5))],
  dns: [
    merge(
      ok(44, 29, { name: "example.com" }, { "dns.qtype": 1, "dns.qclass": 1, "dns.id": 4242 }),
      sock("dns.sock", false, 40000, 53, 3),
      { members: { "dns.sock.protocol": 17 } },
    ),
    merge(
      ok(
        47,
        120,
        { name: "a.internal" },
        { "dns.qr": 1, "dns.qtype": 99, "dns.qclass": 1, "dns.rcode": 3, "dns.id": 7 },
      ),
      sock("dns.sock", true, 53, 40000, 5),
    ),
  ],
  create_file: [
    ok(
      257,
      3,
      { path: "/tmp/tmp.Xy12ab" },
      { "create_file.mode": 0o100600, "create_file.dev": 48, "create_file.ino": 812345, "create_file.oflags": 0xc2 },
    ),
    merge(
      ok(
        257,
        4,
        { path: "/home/user/.cache/x y.part" },
        { "create_file.mode": 0o100644, "create_file.dev": 8388609, "create_file.ino": 4294967296 * 2 + 5 },
      ),
      sock("create_file.sock", false, 51234, 443, 3),
    ),
  ],
  rename: [
    ok(316, 0, { old_path: "/tmp/a.part", new_path: "/tmp/a" }),
    ok(82, -2, { old_path: "/home/user/x", new_path: "/home/user/.x" }, { "rename.rflags": 1 }),
  ],
  link: [
    ok(265, 0, { old_path: "/etc/passwd", new_path: "/tmp/p" }, { "link.kind": 1 }),
    ok(266, 0, { old_path: "../lib/x.so", new_path: "/usr/lib/y.so" }, { "link.kind": 2 }),
  ],
  unlink: [ok(263, 0, { path: "/tmp/tmp.Xy12ab" }), ok(87, -2, { path: "/home/user/x y" })],
  rmdir: [ok(263, 0, { path: "/tmp/d" }), ok(84, -39, { path: "/home/user/d" })],
  mount: [
    ok(165, 0, { source: "tmpfs", mount_point: "/run/user/1000", fs_type: "tmpfs" }, { "mount.mflags": 6 }),
    ok(165, -1, { source: "/home/user", mount_point: "/mnt/x", fs_type: "" }, { "mount.mflags": 4096 }),
  ],
  load_module: [
    ok(313, 0, { path: "/lib/modules/6.1.0/kernel/fs/x.ko" }, { "load_module.fd": 3 }),
    ok(175, -17, { path: "" }, { "load_module.fd": -1 }),
  ],
};

export interface WarmUpOptions {
  host?: string;
  /** The transport byte the records carry (the session's). */
  transport?: number;
  /** --pid / --comm of the run: half the records match them. */
  pid?: number;
  comm?: string;
  /** The session's events: each one is warmed up (default: exec alone). */
  events?: readonly EventName[];
  /** Without the streaks of records whose kept runs never repeat (the render benchmark's host-like mix). */
  noStreaks?: boolean;
}

/** A record's header, scalars and strings (packed after the struct, as the kernel packs them). */
function build(
  spec: EventSpec,
  v: number,
  opts: WarmUpOptions,
  text: Record<string, string>,
  members: Record<string, number>,
  addrs: Record<string, readonly number[]> = {},
): Uint8Array {
  const st = spec.struct;
  const strs = spec.strings.map((n) => enc.encode(text[n] ?? ""));
  const size = st.size + strs.reduce((a, s) => a + s.length, 0);
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  const set64 = (at: number, x: number) => dv.setBigUint64(at, BigInt.asUintN(64, BigInt(x)), true);
  // Half of them with the low word's top bit set, as real clocks have: u32At() then returns a
  // double, and code the warm-up only ever saw int32s from was thrown away in the first storm.
  set64(H.ktime_ns, 19310694534391 + v * 1234567 + (v & 1) * 0x80000000);
  set64(H.seq, 1 + v * 1000);
  dv.setUint32(H.size, size, true);
  dv.setUint16(H.type, spec.type, true);
  b[H.version] = ds_wire_const.DS_WIRE_VERSION;
  b[H.encoding] = Encoding.compact;
  dv.setUint32(H.cpu, v & 1, true);
  b[H.mode] = Mode.dual;
  b[H.slots] = 2;
  b[H.transport] = opts.transport ?? Transport.perf;
  for (const [name, x] of Object.entries(members)) {
    const m = memberAt(st, name);
    if (m === undefined) continue;
    if (m.kind === "u64" || m.kind === "s64") set64(m.off, x);
    else if (m.kind === "u32" || m.kind === "s32") dv.setUint32(m.off, x >>> 0, true);
    else if (m.kind === "u16") dv.setUint16(m.off, x, true);
    else if (m.kind === "u8") b[m.off] = x;
  }
  for (const [name, bytes] of Object.entries(addrs)) b.set(bytes, memberAt(st, name)!.off);
  putStrings(spec, b, strs);
  return b;
}

/**
 * A record's strings after its struct, with their len << 16 | offset
 * descriptors; an empty string points nowhere, as the BPF side writes it.
 */
export function putStrings(spec: EventSpec, b: Uint8Array, strs: readonly Uint8Array[]): void {
  const st = spec.struct;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = st.size;
  strs.forEach((s, i) => {
    dv.setUint32(st.off.str! + 4 * i, s.length === 0 ? 0 : ((s.length << 16) | at) >>> 0, true);
    b.set(s, at);
    at += s.length;
  });
}

/** The common members of variant v, --pid applied to the first half. */
function scalars(v: number, opts: WarmUpOptions, half: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, xs] of Object.entries(WARM_SCALARS)) out[name] = xs[v]!;
  if (opts.pid !== undefined && half) out.pid = opts.pid;
  return out;
}

/** The four exec-path records (exec, or usermode_helper and flood, which are exec records). */
function execRecords(spec: EventSpec, opts: WarmUpOptions): Uint8Array[] {
  return [0, 1, 2, 3].map((v) => {
    const text: Record<string, string> = { nodename: opts.host ?? hostname() };
    for (const [k, xs] of Object.entries(WARM_TEXT)) text[k] = xs[v]!;
    // Half of them pass --comm/--pid, so both the kept and the filtered path run.
    if (opts.comm !== undefined && v < 2) text.comm = opts.comm;
    const members = scalars(v, opts, v < 2);
    members.flags = F.DS_F_SLOT1_INTACT | (v === 2 ? F.DS_F_ARGS_TRUNCATED : 0);
    const b = build(spec, v, opts, text, members);
    b[ds_exec.off.level + L.used] = 1;
    b.set(enc.encode(text.comm!), ds_exec.off.level + L.data_observed);
    return b;
  });
}

/**
 * The warm-up's records: exec's four and each other type's variants, each twice
 * (below), then streaks of records whose kept runs never repeat (missing()).
 * Exec is what a storm is made of, so its records are repeated to be at least
 * half of them: the warm-up renders a fixed number in all, whatever the mix.
 */
export function warmUpRecords(opts: WarmUpOptions = {}): Uint8Array[] {
  const events = opts.events ?? ["exec"];
  // Each twice: the renderer keeps an exec's runs by parent (memo.ts), and warms copying them too.
  const execs = execRecords(EVENTS.find((e) => e.name === "exec")!, opts).flatMap((b) => [b, b.slice()]);
  const others: Uint8Array[] = [];
  /** A syscall record that --pid/--comm keep (variant 0) and one they drop (variant 1), with its type. */
  const kinds: Array<[Uint8Array, EventSpec]> = [];
  let flip = false;
  for (const spec of EVENTS) {
    if (spec.name === "exec" || !events.includes(spec.name)) continue;
    if (spec.struct === ds_exec) {
      others.push(...execRecords(spec, opts).slice(1, 3));
      continue;
    }
    const variants = WARM_RECORDS[spec.name];
    if (variants === undefined) throw new Error(`no warm-up records for ${spec.name}`);
    flip = !flip;
    variants.forEach((w, v) => {
      const text: Record<string, string> = {
        comm: opts.comm !== undefined && v === 0 ? opts.comm : WARM_TEXT.comm![v + 1]!,
        exe: WARM_TEXT.exe![v + 1]!,
        nodename: opts.host ?? hostname(),
        pid_tree: WARM_TEXT.pid_tree![v + 1]!,
        ...w.text,
      };
      const members = { ...scalars(v + 1, opts, v === 0), flags: F.DS_F_SLOT1_INTACT, ...w.members };
      const b = build(spec, v + 1, opts, text, members, w.addrs);
      // The renderer keeps a process's run of fields (memo.ts): each record twice, every other
      // type with another exec_seq, so the warm-up renders that run as often as it copies it.
      const twin = b.slice();
      if (flip) {
        const at = spec.struct.off.common! + ds_common.off.exec_seq;
        for (const x of [b, twin]) x[at] = x[at]! ^ 1;
      }
      others.push(b, twin);
      if (v < 2 && kinds.length === v && variants.length > 1) kinds.push([b, spec]);
    });
  }
  const out = [...execs];
  while (out.length < others.length) out.push(...execs);
  if (opts.noStreaks) return [...out, ...others];
  // Of records --pid/--comm keep (variant 0) and of ones they drop (variant 2 of exec, 1 of the others).
  const exec = EVENTS.find((e) => e.name === "exec")!;
  const bases: Array<[Uint8Array, EventSpec]> = [[execs[0]!, exec], [execs[4]!, exec], ...kinds];
  return [...out, ...others, ...bases.flatMap(([b, spec]) => missing(b, spec))];
}

/**
 * Records of one process whose kept runs (memo.ts) differ each time (another
 * cgroup, and for an exec another inode), more of them in a row than the
 * renderer misses before it passes such runs over: the warm-up takes that path
 * too, or the first storm that does pays for the compiler again.
 */
function missing(b: Uint8Array, spec: EventSpec): Uint8Array[] {
  const at = [spec.struct.off.cgroup_id, spec.struct.off.exe_ino].filter((x) => x !== undefined);
  return Array.from({ length: STREAK + 4 }, (_, k) => {
    const c = b.slice();
    for (const x of at) c[x] = (c[x]! + 1 + k) & 0xff;
    return c;
  });
}
