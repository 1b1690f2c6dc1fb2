import { describe, expect, test } from "bun:test";
import {
  jsonLine,
  rfc3339Nano,
  slot1Data,
  TABLE_HEADER,
  TYPE_WIDTH,
  tableRow,
  tableType,
} from "../../src/render/event.ts";
import { SCHEMA_VERSION } from "../../src/render/schema.ts";
import { decodeEvent, type ExecEvent, isExecEvent } from "../../src/wire/decode.ts";
import { EVENTS } from "../../src/wire/events.ts";
import { Flags, Mode, SLOT_NONE, Transport } from "../helpers/layout.ts";
import { schemaErrors } from "../helpers/schema.ts";
import { BUSINESS_TAG, markFor, type SynthOptions, synthEvent } from "../helpers/synth.ts";

function event(o: SynthOptions = {}, maxArgs = 32): ExecEvent {
  const r = decodeEvent(synthEvent(o), { maxArgs });
  if (!r.ok) throw new Error(`synthetic event did not decode: ${r.reason}`);
  if (!isExecEvent(r.event)) throw new Error("synthetic exec decoded as another type");
  return r.event;
}

const RAW_CONTROL = /[\x00-\x1f\x7f]/;

/** The design note's example event. */
const NORMAL: SynthOptions = { pid: 18201, ppid: 18100, comm: "ls", seq: 42n, args: ["ls", "-la"] };

describe("tableRow", () => {
  test("a normal event has the design note's shape", () => {
    const row = tableRow(event(NORMAL));
    expect(row).toBe("EXEC         18201    18100    ls               slot1_data=[ls] slot0_seq=42 cmd=ls -la");
    expect(row.startsWith("EXEC         18201    18100    ls               slot1_data=[ls] slot0_seq=42")).toBe(true);
  });

  test("columns line up with TABLE_HEADER", () => {
    const [head, rule] = TABLE_HEADER.split("\n") as [string, string];
    const row = tableRow(event(NORMAL));
    const cols = (s: string) => [...s.matchAll(/\S+/g)].slice(0, 5).map((m) => m.index);
    expect(cols(row)).toEqual(cols(head));
    expect(cols(rule)).toEqual(cols(head));
  });

  test("no args: no cmd= part", () => {
    expect(tableRow(event({ ...NORMAL, args: [] }))).toBe(
      "EXEC         18201    18100    ls               slot1_data=[ls] slot0_seq=42",
    );
  });

  test("arguments with spaces, quotes or empty are quoted", () => {
    const row = tableRow(event({ ...NORMAL, args: ["echo", "a b", "", "it's", 'say "hi"'] }), 1000);
    expect(row.endsWith(`cmd=echo 'a b' '' "it's" 'say "hi"'`)).toBe(true);
    // Escaped once: bash -c 'echo "a b"' shows as a shell would take it, no doubled backslashes.
    expect(tableRow(event({ ...NORMAL, args: ["bash", "-c", 'echo "a b"'] }), 1000)).toEndWith(
      `cmd=bash -c 'echo "a b"'`,
    );
  });

  test("the command line is cut to the terminal's width, and not at all in a file or a pipe", () => {
    const long = "x".repeat(300);
    expect(tableRow(event({ ...NORMAL, args: ["echo", long] }), Number.POSITIVE_INFINITY)).toEndWith(
      `cmd=echo ${long}`,
    );
    const row = tableRow(event({ ...NORMAL, args: ["echo", long] }), 120);
    expect(row.length).toBeLessThanOrEqual(120);
    expect(row).toEndWith("…");
  });

  test("truncated args are marked", () => {
    const many = Array.from({ length: 5 }, (_, i) => `a${i}`);
    const row = tableRow(event({ ...NORMAL, args: many }, 3));
    expect(row.endsWith("cmd=a0 a1 a2 …[truncated]")).toBe(true);
    expect(tableRow(event({ ...NORMAL, flags: Flags.slot1Intact | Flags.argsTruncated }))).toContain(
      "cmd=ls -la …[truncated]",
    );
  });

  test("a flood event shows FLOOD", () => {
    expect(tableRow(event({ ...NORMAL, type: 2 })).startsWith("FLOOD        18201")).toBe(true);
  });

  test("a clobbered event says so", () => {
    expect(tableRow(event({ ...NORMAL, flags: Flags.slot1Intact | Flags.clobbered }))).toContain(
      "slot0_seq=42 CLOBBERED",
    );
  });

  test("a corrupt event starts with CORRUPT and shows the damaged bytes escaped", () => {
    const damaged = new Uint8Array([
      0x73, 0x30, 0x3a, 0x6c, 0x73, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x00, 0x07, 0, 0, 0, 0,
    ]);
    const ev = event({
      ...NORMAL,
      flags: Flags.corrupt,
      mode: Mode.single,
      slots: 1,
      levels: [
        { slot: 0, used: 1, intact: 0, tagExpected: 1n, tagObserved: 2n, dataExpected: "ls", dataObserved: damaged },
        { slot: 0, used: 1, intact: 1, tagExpected: 2n, dataExpected: markFor(new TextEncoder().encode("ls")) },
      ],
    });
    const row = tableRow(ev);
    expect(row.startsWith("CORRUPT      18201    18100    ls               ")).toBe(true);
    const shown = "s0:ls\\x1b[31m\\x00\\x07";
    expect(row).toContain(`slot1_data=[${shown}] slot0_seq=42`);
    expect(row).toContain(`L1@slot0:[ls]->[${shown}]`);
    expect(row).not.toContain("L2@"); // intact levels are not listed
    expect(RAW_CONTROL.test(row)).toBe(false);
  });

  test("a corrupt ring-buffer level is named 'ring'", () => {
    const ev = event({
      ...NORMAL,
      flags: Flags.corrupt,
      transport: Transport.ringbuf,
      levels: [
        { slot: 1, used: 1, intact: 1, dataExpected: "ls" },
        {
          slot: SLOT_NONE,
          used: 1,
          intact: 0,
          tagExpected: 5n,
          tagObserved: 6n,
          dataExpected: "s0:ls",
          dataObserved: "s0:XX",
        },
      ],
    });
    expect(tableRow(ev)).toContain("L2@ring:[s0:ls]->[s0:XX]");
  });

  test("hostile comm, args and slot data never put a raw control character in the row", () => {
    const ev = event({
      ...NORMAL,
      comm: "\x1b[2J\x07\u202e",
      args: ["\x1b]0;pwned\x07", "a\nb", "\u202egnp.exe", "\\x1b"],
      levels: [{ slot: 1, used: 1, intact: 0, dataExpected: "x", dataObserved: [0x1b, 0x9b, 0x0d, 0x0a] }],
      flags: Flags.corrupt,
    });
    const row = tableRow(ev);
    expect(RAW_CONTROL.test(row)).toBe(false);
    expect(/[\u202a-\u202e\u2066-\u2069]/.test(row)).toBe(false);
    expect(row.split("\n").length).toBe(1);
  });

  // Same root cause as the width bug in escape.test.ts: escapeText(comm, 16) can
  // return 17 characters ("…" past the limit), so padEnd(16) no longer pads and
  // the FILE_INFO column shifts by one for any comm that escapes to more than 16.
  test("a comm that escapes long keeps FILE_INFO in its column", () => {
    const row = tableRow(event({ ...NORMAL, comm: "\x01\x02\x03\x04\x05\x06\x07\x08" }));
    expect(row.indexOf("slot1_data=")).toBe(tableRow(event(NORMAL)).indexOf("slot1_data="));
  });
});

describe("slot1Data", () => {
  test("the business level's observed data, NUL padding dropped", () => {
    expect(slot1Data(event(NORMAL))).toBe("ls");
  });
  test("empty when no level ran", () => {
    expect(slot1Data(event({ ...NORMAL, levels: [] }))).toBe("");
    expect(tableRow(event({ ...NORMAL, levels: [] }))).toContain("slot1_data=[] slot0_seq=42");
  });
});

describe("jsonLine", () => {
  const BOOT = 1_700_000_000_000_000_000n;
  test("every field of the schema, with its one type and the right value", () => {
    const ev = event({
      ...NORMAL,
      tid: 18202,
      uid: 1000,
      gid: 100,
      cpu: 5,
      ktimeNs: 123_456_789_012n,
      cgroupId: 7777n,
      mntnsId: 4026531840,
      filename: "/usr/bin/ls",
      cwd: "/home/u",
      exe: "/usr/bin/ls",
    });
    const line = jsonLine(ev, BOOT, "host-a");
    expect(line.includes("\n")).toBe(false);
    const o = JSON.parse(line) as Record<string, unknown>;
    expect(schemaErrors(o)).toEqual([]);
    expect(o).toEqual({
      schema: SCHEMA_VERSION,
      host: "host-a",
      event: "exec",
      time: "2023-11-14T22:15:23.456789012Z",
      ktime_ns: "123456789012",
      cpu: 5,
      pid: 18201,
      tid: 18202,
      ppid: 18100,
      uid: 1000,
      gid: 100,
      comm: "ls",
      cgroup_id: "7777",
      filename: "/usr/bin/ls",
      filename_truncated: false,
      args: ["ls", "-la"],
      args_truncated: false,
      read_at_exit: false,
      cwd: "/home/u",
      exe: "/usr/bin/ls",
      res: 0,
      exe_dev: 0,
      exe_ino: "0",
      exe_deleted: false,
      exe_memfd: false,
      exe_unreachable: false,
      tty: "",
      stdin: "",
      stdout: "",
      stdio_truncated: false,
      stdio_deleted: false,
      sa_family: 0,
      sip: "",
      sport: 0,
      dip: "",
      dport: 0,
      ssh: "",
      ld_preload: "",
      env_truncated: false,
      path_truncated: false,
      euid: 1000,
      egid: 100,
      pgid: 18201,
      sid: 18000,
      sessionid: 3,
      auid: 1000,
      pidns_id: 4026531836,
      mntns_id: 4026531840,
      nodename: "",
      exec_id: "123000000000:18201:7",
      parent_exec_id: "100000000000:18100:6",
      pid_tree: "",
      heap: {
        slot1_data: "ls",
        slot0_seq: "42",
        slot1_intact: true,
        mode: "dual",
        slots: 2,
        transport: "perf",
        encoding: "compact",
        bytes: ev.size,
        corrupt: false,
        clobbered: false,
      },
    });
  });

  test("the validator itself rejects a missing field, a wrong type and an unknown key", () => {
    const o = JSON.parse(jsonLine(event(NORMAL), BOOT)) as Record<string, unknown>;
    expect(schemaErrors({ ...o, pid: "1" })).toEqual(['pid: "1" is not integer']);
    const { cwd: _cwd, ...noCwd } = o;
    expect(schemaErrors(noCwd)).toEqual(["cwd: missing"]);
    expect(schemaErrors({ ...o, extra: 1 })).toEqual(["extra: not in the schema"]);
    expect(schemaErrors({ ...o, heap: { ...(o.heap as object), slots: true } })).toEqual([
      "heap.slots: true is not integer",
    ]);
  });

  test("invalid UTF-8 keeps its bytes: \\xNN text and a base64 twin", () => {
    const ev = event({ ...NORMAL, filename: [0x2f, 0x78, 0xff], argsRaw: [0x61, 0xfe, 0], cwd: "/ok" });
    const o = JSON.parse(jsonLine(ev, BOOT)) as Record<string, unknown>;
    expect(schemaErrors(o)).toEqual([]);
    expect(o.filename).toBe("/x\\xff");
    expect(Buffer.from(String(o.filename_b64), "base64")).toEqual(Buffer.from([0x2f, 0x78, 0xff]));
    expect(o.args).toEqual(["a\\xfe"]);
    expect(Buffer.from(String(o.args_b64), "base64")).toEqual(Buffer.from([0x61, 0xfe, 0]));
    expect("cwd_b64" in o).toBe(false);
    expect(JSON.stringify(o)).not.toContain("\ufffd");
  });

  test("filename_truncated follows the kernel's flag", () => {
    const o = JSON.parse(jsonLine(event({ ...NORMAL, flags: Flags.slot1Intact | Flags.filenameTruncated }), BOOT));
    expect(o.filename_truncated).toBe(true);
  });

  test("mode, corrupt, truncation flags and levels follow the event", () => {
    const ev = event({
      ...NORMAL,
      mode: Mode.nest3,
      slots: 3,
      flags: Flags.corrupt | Flags.argsTruncated | Flags.exeTruncated,
      pexe: "/sbin/init",
      levels: [
        {
          slot: 1,
          intact: 0,
          tagExpected: BUSINESS_TAG,
          tagObserved: 0xdeadn,
          dataExpected: "ls",
          dataObserved: "s0:ls",
        },
        { slot: 0, intact: 1, tagExpected: 1n },
        { slot: 2, intact: 1, tagExpected: 2n },
      ],
    });
    const o = JSON.parse(jsonLine(ev, BOOT)) as Record<string, unknown>;
    expect(schemaErrors(o)).toEqual([]);
    const h = o.heap as Record<string, unknown>;
    expect(h.mode).toBe("nest3");
    expect(h.slots).toBe(3);
    expect(h.corrupt).toBe(true);
    expect(h.slot1_intact).toBe(false);
    expect(o.args_truncated).toBe(true);
    expect(o.path_truncated).toBe(true);
    expect(h.slot1_data).toBe("s0:ls");
    expect(h.parent_exe).toBe("/sbin/init");
    const levels = h.levels as Array<Record<string, unknown>>;
    expect(levels.length).toBe(3);
    expect(levels[0]).toEqual({
      slot: 1,
      intact: false,
      tag_expected: BUSINESS_TAG.toString(16),
      tag_observed: "dead",
      expected: "ls",
      observed: "s0:ls",
    });
  });

  test("64-bit values are always decimal strings, exact beyond 2^53", () => {
    const ev = event({ ...NORMAL, cgroupId: 0x8000000000000001n, seq: 0xffffffffffffffffn, ktimeNs: 2n ** 60n });
    const o = JSON.parse(jsonLine(ev, 0n)) as Record<string, unknown>;
    expect(o.cgroup_id).toBe("9223372036854775809");
    expect((o.heap as Record<string, unknown>).slot0_seq).toBe("18446744073709551615");
    expect(o.ktime_ns).toBe((2n ** 60n).toString());
    const small = JSON.parse(jsonLine(event({ ...NORMAL, cgroupId: 5n }), 0n)) as Record<string, unknown>;
    expect(small.cgroup_id).toBe("5");
  });

  test("hostile strings stay one line of valid JSON and round-trip", () => {
    const args = ["\x1b[31m", "a\nb", "\u2028\u2029", '"}{"', "\\"];
    const ev = event({ ...NORMAL, comm: "x\ny", args, cwd: "\x00\x01" });
    const line = jsonLine(ev, BOOT);
    expect(RAW_CONTROL.test(line)).toBe(false);
    const o = JSON.parse(line) as Record<string, unknown>;
    expect(o.args).toEqual(args);
    expect(o.comm).toBe("x\ny");
    expect(o.cwd).toBe("\x00\x01");
  });

  test("time is boot wall time + ktime_ns", () => {
    const ev = event({ ...NORMAL, ktimeNs: 1n });
    const o = JSON.parse(jsonLine(ev, 999_999_999n)) as Record<string, unknown>;
    expect(o.time).toBe("1970-01-01T00:00:01.000000000Z");
  });
});

describe("rfc3339Nano", () => {
  const cases: Array<[bigint, string]> = [
    [0n, "1970-01-01T00:00:00.000000000Z"],
    [1n, "1970-01-01T00:00:00.000000001Z"],
    [10n, "1970-01-01T00:00:00.000000010Z"],
    [1_000n, "1970-01-01T00:00:00.000001000Z"],
    [1_000_000n, "1970-01-01T00:00:00.001000000Z"],
    [999_999_999n, "1970-01-01T00:00:00.999999999Z"],
    [1_000_000_000n, "1970-01-01T00:00:01.000000000Z"],
    [1_700_000_000_123_456_789n, "2023-11-14T22:13:20.123456789Z"],
    [1_700_000_000_999_999_999n, "2023-11-14T22:13:20.999999999Z"],
    [951_782_400_000_000_005n, "2000-02-29T00:00:00.000000005Z"],
    [946_684_799_999_999_999n, "1999-12-31T23:59:59.999999999Z"],
    [253_402_300_799_999_999_999n, "9999-12-31T23:59:59.999999999Z"],
  ];
  for (const [ns, want] of cases) {
    test(`${ns} -> ${want}`, () => {
      expect(rfc3339Nano(ns)).toBe(want);
    });
  }

  test("always 9 fractional digits", () => {
    for (let ns = 0n; ns < 2_000_000_000n; ns += 123_456_789n) {
      expect(rfc3339Nano(1_600_000_000_000_000_000n + ns)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    }
  });
});

describe("the TYPE column", () => {
  test("every event's TYPE fits it, and no two events share one", () => {
    const labels = EVENTS.map((e) => tableType(e.name));
    for (const l of [...labels, "CORRUPT", "LOST"]) expect(l.length).toBeLessThanOrEqual(TYPE_WIDTH);
    expect(new Set(labels).size).toBe(labels.length);
    expect(tableType("privilege_escalation")).toBe("PRIVESC");
    expect(tableType("ptrace")).toBe("PTRACE");
  });
});
