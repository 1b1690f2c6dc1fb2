/**
 * The byte layout of bpf/dual_slot.h, mirrored for the decoder.
 * test/unit/layout.test.ts checks every offset here against the object's BTF,
 * so an edit to the header that is not made here too fails the tests.
 */

export const SD_EVENT_MAX = 16384;
export const WIRE_VERSION = 1;

export const EventType = { exec: 1, flood: 2 } as const;
export const Mode = { dual: 0, single: 1, nest3: 2 } as const;
export const Transport = { perf: 0, ringbuf: 1, "ringbuf-output": 2 } as const;
export const Encoding = { compact: 0, fixed: 1 } as const;

export type ModeName = keyof typeof Mode;
export type TransportName = keyof typeof Transport;
export type EncodingName = keyof typeof Encoding;

export const Flags = {
  slot1Intact: 1 << 0,
  corrupt: 1 << 1,
  clobbered: 1 << 2,
  argsTruncated: 1 << 3,
  cwdTruncated: 1 << 4,
  exeTruncated: 1 << 5,
  filenameTruncated: 1 << 6,
  pexeTruncated: 1 << 7,
} as const;

export const Str = { comm: 0, filename: 1, args: 2, cwd: 3, exe: 4, pexe: 5 } as const;
export const STR_NR = 6;
export const SLOT_NONE = 0xff;
export const LEVELS = 3;

/** struct ds_level */
export const Level = {
  size: 56,
  tag_expected: 0,
  tag_observed: 8,
  data_expected: 16,
  data_observed: 32,
  slot: 48,
  used: 49,
  intact: 50,
} as const;

/** struct ds_header */
export const Header = {
  size: 40,
  tag: 0,
  ktime_ns: 8,
  seq: 16,
  size_: 24,
  type: 28,
  version: 30,
  encoding: 31,
  cpu: 32,
  mode: 36,
  slots: 37,
  transport: 38,
  guard: 39,
} as const;

/** struct ds_exec */
export const Exec = {
  size: 288,
  hdr: 0,
  pid: 40,
  tid: 44,
  ppid: 48,
  uid: 52,
  gid: 56,
  flags: 60,
  cgroup_id: 64,
  mntns_id: 72,
  args_total: 76,
  mark: 80,
  level: 96,
  str: 264,
} as const;

/** struct ds_exec_fixed: where each fixed-size string array starts, and its size. */
export const ExecFixed = {
  size: 4144,
  comm: [288, 16],
  filename: [304, 256],
  args: [560, 2048],
  cwd: [2608, 512],
  exe: [3120, 512],
  pexe: [3632, 512],
} as const;

/** struct ds_counters (per CPU) */
export const Counters = {
  size: 80,
  seq: 0,
  events: 8,
  output_fail: 16,
  corrupt: 24,
  clobbers: 32,
  lookup_fail: 40,
  slot_gets: 48,
  bytes: 72,
} as const;
