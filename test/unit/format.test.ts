import { describe, expect, test } from "bun:test";
import { jsonLine, rfc3339Nano, slot1Data, TABLE_HEADER, tableRow } from "../../src/render/event.ts";
import { decodeEvent, type ExecEvent } from "../../src/wire/decode.ts";
import { Flags, Mode, SLOT_NONE, Transport } from "../helpers/layout.ts";
import { BUSINESS_TAG, markFor, type SynthOptions, synthEvent } from "../helpers/synth.ts";

function event(o: SynthOptions = {}, maxArgs = 32): ExecEvent {
  const r = decodeEvent(synthEvent(o), { maxArgs });
  if (!r.ok) throw new Error(`synthetic event did not decode: ${r.reason}`);
  return r.event;
}

const RAW_CONTROL = /[\x00-\x1f\x7f]/;

/** The design note's example event. */
const NORMAL: SynthOptions = { pid: 18201, ppid: 18100, comm: "ls", seq: 42n, args: ["ls", "-la"] };

describe("tableRow", () => {
  test("a normal event has the design note's shape", () => {
    const row = tableRow(event(NORMAL));
    expect(row).toBe("EXEC     18201    18100    ls               slot1_data=[ls] slot0_seq=42 cmd=ls -la");
    expect(row.startsWith("EXEC     18201    18100    ls               slot1_data=[ls] slot0_seq=42")).toBe(true);
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
      "EXEC     18201    18100    ls               slot1_data=[ls] slot0_seq=42",
    );
  });

  test("arguments with spaces, quotes or empty are quoted", () => {
    const row = tableRow(event({ ...NORMAL, args: ["echo", "a b", "", "it's"] }));
    expect(row.endsWith(`cmd=echo "a b" "" "it's"`)).toBe(true);
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
    expect(tableRow(event({ ...NORMAL, type: 2 })).startsWith("FLOOD    18201")).toBe(true);
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
    expect(row.startsWith("CORRUPT  18201    18100    ls               ")).toBe(true);
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
  const REQUIRED: Record<string, "string" | "number" | "boolean" | "array" | "integer"> = {
    event: "string",
    time: "string",
    ktime_ns: "integer",
    cpu: "integer",
    pid: "integer",
    tid: "integer",
    ppid: "integer",
    uid: "integer",
    comm: "string",
    filename: "string",
    slot1_data: "string",
    slot0_seq: "integer",
    slot1_intact: "boolean",
    mode: "string",
    slots: "integer",
    corrupt: "boolean",
    args: "array",
    args_truncated: "boolean",
    cwd: "string",
    exe: "string",
    path_truncated: "boolean",
    gid: "integer",
    cgroup_id: "integer",
    mntns_id: "integer",
  };

  function typeOf(v: unknown): string {
    if (Array.isArray(v)) return "array";
    if (typeof v === "number" && Number.isSafeInteger(v)) return "integer";
    return typeof v;
  }

  test("every required key, with the right type and value", () => {
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
    const line = jsonLine(ev, BOOT);
    expect(line.includes("\n")).toBe(false);
    const o = JSON.parse(line) as Record<string, unknown>;
    for (const [k, t] of Object.entries(REQUIRED)) {
      expect(k in o ? k : `missing ${k}`).toBe(k);
      expect(`${k}: ${typeOf(o[k])}`).toBe(`${k}: ${t}`);
    }
    expect(o.event).toBe("exec");
    expect(o.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect(o.time).toBe("2023-11-14T22:15:23.456789012Z");
    expect(o.ktime_ns).toBe(123_456_789_012);
    expect(o.cpu).toBe(5);
    expect(o.pid).toBe(18201);
    expect(o.tid).toBe(18202);
    expect(o.ppid).toBe(18100);
    expect(o.uid).toBe(1000);
    expect(o.gid).toBe(100);
    expect(o.comm).toBe("ls");
    expect(o.filename).toBe("/usr/bin/ls");
    expect(o.args).toEqual(["ls", "-la"]);
    expect(o.args_truncated).toBe(false);
    expect(o.cwd).toBe("/home/u");
    expect(o.exe).toBe("/usr/bin/ls");
    expect(o.path_truncated).toBe(false);
    expect(o.slot1_data).toBe("ls");
    expect(o.slot0_seq).toBe(42);
    expect(o.slot1_intact).toBe(true);
    expect(o.mode).toBe("dual");
    expect(o.slots).toBe(2);
    expect(o.corrupt).toBe(false);
    expect(o.cgroup_id).toBe(7777);
    expect(o.mntns_id).toBe(4026531840);
    for (const a of o.args as unknown[]) expect(typeof a).toBe("string");
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
    expect(o.mode).toBe("nest3");
    expect(o.slots).toBe(3);
    expect(o.corrupt).toBe(true);
    expect(o.slot1_intact).toBe(false);
    expect(o.args_truncated).toBe(true);
    expect(o.path_truncated).toBe(true);
    expect(o.slot1_data).toBe("s0:ls");
    expect(o.parent_exe).toBe("/sbin/init");
    const levels = o.levels as Array<Record<string, unknown>>;
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

  test("64-bit values beyond 2^53 are exact decimal strings, not rounded numbers", () => {
    const ev = event({ ...NORMAL, cgroupId: 0x8000000000000001n, seq: 0xffffffffffffffffn, ktimeNs: 2n ** 60n });
    const o = JSON.parse(jsonLine(ev, 0n)) as Record<string, unknown>;
    expect(o.cgroup_id).toBe("9223372036854775809");
    expect(o.slot0_seq).toBe("18446744073709551615");
    expect(o.ktime_ns).toBe((2n ** 60n).toString());
    const small = JSON.parse(jsonLine(event({ ...NORMAL, cgroupId: BigInt(Number.MAX_SAFE_INTEGER) }), 0n)) as Record<
      string,
      unknown
    >;
    expect(small.cgroup_id).toBe(Number.MAX_SAFE_INTEGER);
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
