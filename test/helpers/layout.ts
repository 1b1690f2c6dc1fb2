/**
 * Short names for the generated wire layout, as the decoder tests use them:
 * `Exec.pid` is `ds_exec.off.pid`. Every value comes from src/wire/layout.gen.ts
 * (the object's BTF); only the names are the tests' own.
 */
import {
  ds_common,
  ds_counters,
  ds_exec,
  ds_exec_fixed,
  ds_flags,
  ds_header,
  ds_level,
  ds_str,
  ds_wire_const,
} from "../../src/wire/layout.gen.ts";

export { Encoding, EventType, Mode, Transport } from "../../src/wire/names.ts";

export const SD_EVENT_MAX = ds_wire_const.DS_SLOT_SIZE;
export const WIRE_VERSION = ds_wire_const.DS_WIRE_VERSION;
export const SLOT_NONE = ds_wire_const.DS_SLOT_NONE;
export const LEVELS = ds_exec.count.level;
export const STR_NR = ds_exec.count.str;

/** struct ds_header; the member `size` is `size_` here, as `size` is the struct's. */
export const Header = { ...ds_header.off, size_: ds_header.off.size, size: ds_header.size } as const;
export const Exec = { ...ds_exec.off, size: ds_exec.size } as const;
/** struct ds_common's members, as offsets in the record (it sits at the same place in every record). */
export const Common = Object.fromEntries(
  Object.entries(ds_common.off).map(([k, v]) => [k, ds_exec.off.common + v]),
) as { readonly [K in keyof typeof ds_common.off]: number };
export const Level = { ...ds_level.off, size: ds_level.size } as const;
export const Counters = { ...ds_counters.off, size: ds_counters.size } as const;

type StrName =
  | "comm"
  | "filename"
  | "args"
  | "cwd"
  | "exe"
  | "pexe"
  | "nodename"
  | "pid_tree"
  | "tty"
  | "stdin"
  | "stdout"
  | "sip"
  | "dip"
  | "ssh"
  | "ld_preload";
const fixedArray = (n: StrName) => [ds_exec_fixed.off[n], ds_exec_fixed.bytes[n]] as const;
/** struct ds_exec_fixed: where each string's array starts, and its size. */
export const ExecFixed = {
  size: ds_exec_fixed.size,
  comm: fixedArray("comm"),
  filename: fixedArray("filename"),
  args: fixedArray("args"),
  cwd: fixedArray("cwd"),
  exe: fixedArray("exe"),
  pexe: fixedArray("pexe"),
  nodename: fixedArray("nodename"),
  pid_tree: fixedArray("pid_tree"),
  tty: fixedArray("tty"),
  stdin: fixedArray("stdin"),
  stdout: fixedArray("stdout"),
  sip: fixedArray("sip"),
  dip: fixedArray("dip"),
  ssh: fixedArray("ssh"),
  ld_preload: fixedArray("ld_preload"),
} as const;

export const Str = {
  comm: ds_str.DS_STR_COMM,
  filename: ds_str.DS_STR_FILENAME,
  args: ds_str.DS_STR_ARGS,
  cwd: ds_str.DS_STR_CWD,
  exe: ds_str.DS_STR_EXE,
  pexe: ds_str.DS_STR_PEXE,
  nodename: ds_str.DS_STR_NODENAME,
  pid_tree: ds_str.DS_STR_PID_TREE,
  tty: ds_str.DS_STR_TTY,
  stdin: ds_str.DS_STR_STDIN,
  stdout: ds_str.DS_STR_STDOUT,
  sip: ds_str.DS_STR_SIP,
  dip: ds_str.DS_STR_DIP,
  ssh: ds_str.DS_STR_SSH,
  ld_preload: ds_str.DS_STR_LD_PRELOAD,
} as const;

export const Flags = {
  slot1Intact: ds_flags.DS_F_SLOT1_INTACT,
  corrupt: ds_flags.DS_F_CORRUPT,
  clobbered: ds_flags.DS_F_CLOBBERED,
  argsTruncated: ds_flags.DS_F_ARGS_TRUNCATED,
  cwdTruncated: ds_flags.DS_F_CWD_TRUNCATED,
  exeTruncated: ds_flags.DS_F_EXE_TRUNCATED,
  filenameTruncated: ds_flags.DS_F_FILENAME_TRUNCATED,
  pexeTruncated: ds_flags.DS_F_PEXE_TRUNCATED,
} as const;
