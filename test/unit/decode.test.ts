import { describe, expect, test } from "bun:test";
import { splitArgs } from "../../src/wire/decode.ts";
import { decode, enc, ok, pad16 } from "../helpers/decode.ts";
import { EventType, Exec, ExecFixed, Flags, Level, Mode, SLOT_NONE, Transport } from "../helpers/layout.ts";
import { BUSINESS_TAG, markFor, synthEvent } from "../helpers/synth.ts";

/** struct ds_exec_extra as the synthetic builder leaves it: no terminal, fds, socket or environment. */
const NO_EXEC_CONTEXT = {
  tty: "",
  stdin: "",
  stdout: "",
  saFamily: 0,
  sip: "",
  sport: 0,
  dip: "",
  dport: 0,
  ssh: "",
  ldPreload: "",
  exeDev: 0,
  exeIno: 0n,
} as const;

describe("valid events decode to exactly the fields given", () => {
  test("compact", () => {
    const b = synthEvent({
      tag: 0xaabbccddeeff0011n,
      ktimeNs: 987_654_321_123n,
      seq: 0xfffffffffffffffen,
      cpu: 7,
      mode: Mode.nest3,
      slots: 3,
      transport: Transport["ringbuf-output"],
      guard: 1,
      pid: 18201,
      tid: 18202,
      ppid: 18100,
      uid: 0xfffffffe,
      gid: 65534,
      flags: Flags.slot1Intact | Flags.clobbered | Flags.exeTruncated,
      cgroupId: 0x8000000000000001n,
      mntnsId: 4026531841,
      euid: 0,
      egid: 65535,
      pgid: 18200,
      sid: 18000,
      sessionid: 0xffffffff,
      auid: 0xffffffff,
      pidnsId: 4026531836,
      startNs: 0xffffffffffffffffn,
      execSeq: 3n,
      pstartNs: 555n,
      pexecSeq: 2n,
      nodename: "box",
      pidTree: "18201.bash<18100.sshd<1.systemd",
      argsTotal: 99999,
      comm: "bash",
      filename: "/bin/bash",
      args: ["bash", "-c", "echo hi"],
      cwd: "/tmp",
      exe: "/usr/bin/bash",
      pexe: "/usr/lib/systemd/systemd",
      levels: [
        { slot: 1, used: 1, intact: 1, tagExpected: 10n, tagObserved: 10n, dataExpected: "bash", dataObserved: "bash" },
        {
          slot: 0,
          used: 1,
          intact: 0,
          tagExpected: 11n,
          tagObserved: 12n,
          dataExpected: "s0:bash",
          dataObserved: "s0:zzzz",
        },
        {
          slot: 2,
          used: 1,
          intact: 1,
          tagExpected: 13n,
          tagObserved: 13n,
          dataExpected: "systemd",
          dataObserved: "systemd",
        },
      ],
    });
    const size = Exec.size + 4 + 9 + "bash\0-c\0echo hi\0".length + 4 + 13 + 24 + 3 + 31;
    expect(b.length).toBe(size);
    const ev = ok(b);
    expect(ev).toEqual({
      type: "exec",
      res: 0,
      ...NO_EXEC_CONTEXT,
      ktimeNs: 987_654_321_123n,
      seq: 0xfffffffffffffffen,
      tag: 0xaabbccddeeff0011n,
      cpu: 7,
      size,
      encoding: "compact",
      mode: "nest3",
      slots: 3,
      transport: "ringbuf-output",
      guard: true,
      pid: 18201,
      tid: 18202,
      ppid: 18100,
      uid: 0xfffffffe,
      gid: 65534,
      cgroupId: 0x8000000000000001n,
      euid: 0,
      egid: 65535,
      pgid: 18200,
      sid: 18000,
      sessionid: 0xffffffff,
      auid: 0xffffffff,
      pidnsId: 4026531836,
      mntnsId: 4026531841,
      execId: "18446744073709551615:18201:3",
      parentExecId: "555:18100:2",
      nodename: "box",
      pidTree: "18201.bash<18100.sshd<1.systemd",
      comm: "bash",
      filename: "/bin/bash",
      filenameTruncated: false,
      raw: null,
      args: ["bash", "-c", "echo hi"],
      argsTotal: 99999,
      cwd: "/tmp",
      exe: "/usr/bin/bash",
      pexe: "/usr/lib/systemd/systemd",
      flags: Flags.slot1Intact | Flags.clobbered | Flags.exeTruncated,
      argsTruncated: false,
      pathTruncated: true,
      slot1Intact: true,
      corrupt: false,
      clobbered: true,
      levels: [
        {
          slot: 1,
          intact: true,
          tagExpected: 10n,
          tagObserved: 10n,
          dataExpected: pad16("bash"),
          dataObserved: pad16("bash"),
        },
        {
          slot: 0,
          intact: false,
          tagExpected: 11n,
          tagObserved: 12n,
          dataExpected: pad16("s0:bash"),
          dataObserved: pad16("s0:zzzz"),
        },
        {
          slot: 2,
          intact: true,
          tagExpected: 13n,
          tagObserved: 13n,
          dataExpected: pad16("systemd"),
          dataObserved: pad16("systemd"),
        },
      ],
    });
  });

  test("fixed", () => {
    const b = synthEvent({
      encoding: "fixed",
      ktimeNs: 1n,
      seq: 1n,
      cpu: 0,
      transport: Transport.ringbuf,
      pid: 1,
      tid: 1,
      ppid: 0,
      uid: 0,
      gid: 0,
      flags: Flags.corrupt | Flags.argsTruncated | Flags.cwdTruncated,
      cgroupId: 1n,
      mntnsId: 2,
      argsTotal: 3,
      comm: "0123456789abcdef", // a full 16-byte array
      filename: "/sbin/init",
      args: ["init", "splash"],
      cwd: "/",
      exe: "/sbin/init",
    });
    expect(b.length).toBe(ExecFixed.size);
    const ev = ok(b);
    expect(ev).toEqual({
      type: "exec",
      res: 0,
      ...NO_EXEC_CONTEXT,
      ktimeNs: 1n,
      seq: 1n,
      tag: BUSINESS_TAG + 1n,
      cpu: 0,
      size: ExecFixed.size,
      encoding: "fixed",
      mode: "dual",
      slots: 2,
      transport: "ringbuf",
      guard: false,
      pid: 1,
      tid: 1,
      ppid: 0,
      uid: 0,
      gid: 0,
      cgroupId: 1n,
      euid: 0,
      egid: 0,
      pgid: 1,
      sid: 18000,
      sessionid: 3,
      auid: 0,
      pidnsId: 4026531836,
      mntnsId: 2,
      execId: "123000000000:1:7",
      parentExecId: "100000000000:0:6",
      nodename: "",
      pidTree: "",
      comm: "0123456789abcdef",
      filename: "/sbin/init",
      filenameTruncated: false,
      raw: null,
      args: ["init", "splash"],
      argsTotal: 3,
      cwd: "/",
      exe: "/sbin/init",
      pexe: "",
      flags: Flags.corrupt | Flags.argsTruncated | Flags.cwdTruncated,
      argsTruncated: true,
      pathTruncated: true,
      slot1Intact: false,
      corrupt: true,
      clobbered: false,
      levels: [
        {
          slot: 1,
          intact: true,
          tagExpected: BUSINESS_TAG,
          tagObserved: BUSINESS_TAG,
          dataExpected: pad16("0123456789abcdef"),
          dataObserved: pad16("0123456789abcdef"),
        },
        {
          slot: null,
          intact: true,
          tagExpected: BUSINESS_TAG + 1n,
          tagObserved: BUSINESS_TAG + 1n,
          dataExpected: markFor(enc.encode("0123456789abcdef")),
          dataObserved: markFor(enc.encode("0123456789abcdef")),
        },
      ],
    });
  });

  test("fixed strings shorter than their array stop at the descriptor length, not at a NUL", () => {
    const b = synthEvent({ encoding: "fixed", comm: "ls" });
    // Garbage after the string inside its array must not leak into the decoded value.
    b.fill(0x41, ExecFixed.comm[0] + 2, ExecFixed.comm[0] + ExecFixed.comm[1]);
    expect(ok(b).comm).toBe("ls");
  });

  test("a flood event decodes with type 'flood'", () => {
    expect(ok(synthEvent({ type: EventType.flood })).type).toBe("flood");
  });

  test("every mode, transport and encoding value of the generated enums decodes", () => {
    for (const [name, v] of Object.entries(Mode))
      expect(ok(synthEvent({ mode: v })).mode).toBe(name as keyof typeof Mode);
    for (const [name, v] of Object.entries(Transport)) {
      expect(ok(synthEvent({ transport: v })).transport).toBe(name as keyof typeof Transport);
    }
    expect(ok(synthEvent({ encoding: "compact" })).encoding).toBe("compact");
    expect(ok(synthEvent({ encoding: "fixed" })).encoding).toBe("fixed");
  });

  test("levels: used=0 levels are skipped, slot 0xff is null (no slot)", () => {
    const ev = ok(
      synthEvent({
        levels: [
          { slot: 1, used: 1, dataExpected: "a" },
          { slot: SLOT_NONE, used: 0, dataExpected: "b" },
          { slot: SLOT_NONE, used: 1, intact: 0, dataExpected: "c", dataObserved: "d" },
        ],
      }),
    );
    expect(ev.levels.length).toBe(2);
    expect(ev.levels[0]!.slot).toBe(1);
    expect(ev.levels[1]!.slot).toBeNull();
    expect(ev.levels[1]!.intact).toBe(false);
    expect(ev.levels[1]!.dataObserved).toEqual(pad16("d"));
    expect(ok(synthEvent({ levels: [] })).levels).toEqual([]);
  });

  test("level data is a copy: mutating the sample afterwards does not change the event", () => {
    const b = synthEvent({ comm: "ls" });
    const ev = ok(b);
    b.fill(0x58, Exec.level, Exec.level + Level.size);
    expect(ev.levels[0]!.dataExpected).toEqual(pad16("ls"));
  });

  test("padding past hdr.size (perf samples are padded) is ignored", () => {
    const b = synthEvent({ trailing: 7, padByte: 0x41 });
    const plain = ok(synthEvent());
    expect(ok(b)).toEqual(plain);
  });

  test("the decoder does not modify the sample", () => {
    const b = synthEvent({ args: ["a", "b"], flags: 0xffffffff });
    const copy = b.slice();
    decode(b);
    expect(b).toEqual(copy);
  });

  test("a sample that is a subarray at a non-zero, unaligned offset decodes the same", () => {
    const b = synthEvent({ pid: 77, args: ["x", "y"] });
    const big = new Uint8Array(b.length + 101).fill(0xee);
    big.set(b, 37);
    expect(ok(big.subarray(37, 37 + b.length))).toEqual(ok(b));
  });
});

describe("args splitting", () => {
  const split = (s: string | Uint8Array, max = 32) => splitArgs(typeof s === "string" ? enc.encode(s) : s, max);

  test("NUL-separated with trailing NUL", () => {
    expect(split("ls\0-la\0/tmp\0")).toEqual({ args: ["ls", "-la", "/tmp"], cut: false, invalid: false });
  });

  test("no trailing NUL (cut in the kernel) keeps the last argument", () => {
    expect(split("ls\0-la\0/tm")).toEqual({ args: ["ls", "-la", "/tm"], cut: false, invalid: false });
  });

  test("only one trailing NUL is dropped: a trailing empty argument survives", () => {
    expect(split("a\0\0")).toEqual({ args: ["a", ""], cut: false, invalid: false });
    expect(split("\0\0")).toEqual({ args: ["", ""], cut: false, invalid: false });
  });

  test("empty arguments in the middle are kept", () => {
    expect(split("a\0\0b\0")).toEqual({ args: ["a", "", "b"], cut: false, invalid: false });
    expect(split("\0x\0")).toEqual({ args: ["", "x"], cut: false, invalid: false });
  });

  test("an empty area is no arguments", () => {
    expect(split("")).toEqual({ args: [], cut: false, invalid: false });
  });

  // BUG (src/wire/decode.ts splitArgs, `if (end === 0) return { args, cut: false }`):
  // argv = [""] is the 1-byte area "\0"; after dropping the trailing NUL it looks
  // like an empty area and decodes as argc 0, while "a\0\0" -> ["a", ""] and
  // "\0\0" -> ["", ""] keep their empty arguments. argc 0 vs argv[0] == "" is
  // exactly the distinction pkexec-style exploits (CVE-2021-4034) hinge on.
  test('a single empty argument ([""], the area "\\0") is one argument, not none', () => {
    expect(split("\0")).toEqual({ args: [""], cut: false, invalid: false });
  });

  test("max args: cut sets cut=true and keeps the first N", () => {
    expect(split("a\0b\0c\0", 2)).toEqual({ args: ["a", "b"], cut: true, invalid: false });
    expect(split("a\0b\0c", 2)).toEqual({ args: ["a", "b"], cut: true, invalid: false });
    expect(split("a\0b\0c\0", 3)).toEqual({ args: ["a", "b", "c"], cut: false, invalid: false });
    expect(split("a\0b\0c", 1)).toEqual({ args: ["a"], cut: true, invalid: false });
  });

  test("decodeEvent: maxArgs cut sets argsTruncated; the flag alone sets it too", () => {
    const many = Array.from({ length: 40 }, (_, i) => `arg${i}`);
    const cut = ok(synthEvent({ args: many }), 32);
    expect(cut.args).toEqual(many.slice(0, 32));
    expect(cut.argsTruncated).toBe(true);
    const exact = ok(synthEvent({ args: many.slice(0, 32) }), 32);
    expect(exact.args.length).toBe(32);
    expect(exact.argsTruncated).toBe(false);
    const flagged = ok(synthEvent({ args: ["a"], flags: Flags.argsTruncated }));
    expect(flagged.args).toEqual(["a"]);
    expect(flagged.argsTruncated).toBe(true);
  });

  test("decodeEvent: empty args area gives [] and empty arguments are kept", () => {
    expect(ok(synthEvent({ args: [] })).args).toEqual([]);
    expect(ok(synthEvent({ args: ["prog", "", "x", ""] })).args).toEqual(["prog", "", "x", ""]);
  });

  test("decodeEvent: args with invalid UTF-8 keep their bytes: \\xNN in the text, the exact area in raw.args", () => {
    const area = [0x61, 0xff, 0, 0xc0, 0x80, 0, 0xed, 0xa0, 0x80, 0, 0x5c, 0xc3, 0xa9, 0];
    const ev = ok(synthEvent({ argsRaw: area }));
    expect(ev.args).toEqual(["a\\xff", "\\xc0\\x80", "\\xed\\xa0\\x80", "\\\\é"]);
    expect(Array.from(ev.raw?.args ?? [])).toEqual(area);
    for (const a of ev.args) expect(a).not.toContain("\ufffd");
  });

  test("decodeEvent: valid UTF-8 args are text as they are, no raw copy", () => {
    const ev = ok(synthEvent({ args: ["é", "a\\b"] }));
    expect(ev.args).toEqual(["é", "a\\b"]);
    expect(ev.raw).toBeNull();
  });
});
