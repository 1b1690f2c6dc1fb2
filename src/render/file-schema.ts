/**
 * The file records' schemas: create_file, rename, link, unlink, rmdir, mount,
 * load_module (bpf/file_events.bpf.h). Paths are absolute; a path built from
 * a relative name keeps its `.` and `..` as given.
 */
import type { RecordEvent } from "../wire/decode.ts";
import { ds_link_kind } from "../wire/layout.gen.ts";
import { FAMILY_NAMES, PROTOCOL_NAMES } from "./ip.ts";
import { sockIp } from "./net-schema.ts";
import { RES_ERRNO, recNum, recSchema, recText } from "./record-fields.ts";

const num = (ev: RecordEvent, member: string): number => Number(ev.fields[member] ?? 0);

/** S_IFMT's values (entries, not an object literal: a formatter once rewrote octal keys). */
const FILE_TYPES: ReadonlyMap<number, string> = new Map([
  [0x1000, "fifo"],
  [0x2000, "char"],
  [0x4000, "dir"],
  [0x6000, "block"],
  [0x8000, "file"],
  [0xa000, "symlink"],
  [0xc000, "socket"],
]);

const RELATIVE =
  "Relative names are joined to the directory they were resolved from (the cwd or a dirfd's); an absolute name to the process's root.";

export const CREATE_FILE_SCHEMA = recSchema(
  "create_file",
  "A file was created: an open with O_CREAT that created it (the kernel's FMODE_CREATED on the new file; an open of an existing file is not reported), or mknod (open, openat, openat2, creat, mknod, mknodat syscall tracepoints). With the creating process's first inet socket, as Elkeid reports it: a download-and-drop shows here.",
  "open's new fd, or mknod's 0.",
  [
    ...recText(
      "path",
      `The new file's absolute path (for open, from the new file itself; for mknod, from the name given: ${RELATIVE})`,
    ),
    {
      key: "file_type",
      type: "string",
      doc: "`file`, `fifo`, `char`, `block`, `socket`, ...",
      get: (ev) => FILE_TYPES.get(num(ev, "create_file.mode") & 0xf000) ?? "unknown",
    },
    {
      key: "mode",
      type: "string",
      doc: "Permission bits, octal (after the umask, for open).",
      get: (ev) => (num(ev, "create_file.mode") & 0xfff).toString(8).padStart(4, "0"),
    },
    recNum("dev", "create_file.dev", "The file's device, the kernel's encoding (`major << 20 | minor`); 0 for mknod."),
    {
      key: "ino",
      type: "string",
      doc: "Its inode number (0 for mknod).",
      get: (ev) => String(ev.fields["create_file.ino"] ?? 0),
    },
    recNum(
      "oflags",
      "create_file.oflags",
      "open's flags (O_CREAT 0x40, O_EXCL 0x80, O_TRUNC 0x200, ...); 0 for mknod.",
    ),
    {
      key: "socket",
      type: "object",
      optional: true,
      doc: "The creating process's first inet socket among its fds 0-15, if any: `fd`, `family`, `protocol`, `sip`, `sport`, `dip`, `dport`.",
      get: (ev) => {
        const s = "create_file.sock";
        const family = num(ev, `${s}.family`);
        if (family === 0) return undefined;
        return {
          fd: num(ev, `${s}.fd`),
          family: FAMILY_NAMES[family] ?? String(family),
          protocol: PROTOCOL_NAMES[num(ev, `${s}.protocol`)] ?? String(num(ev, `${s}.protocol`)),
          sip: sockIp(ev, s, "sip"),
          sport: num(ev, `${s}.sport`),
          dip: sockIp(ev, s, "dip"),
          dport: num(ev, `${s}.dport`),
        };
      },
    },
  ],
  (ev) => `${ev.texts.path} res=${ev.res}`,
);

export const RENAME_SCHEMA = recSchema(
  "rename",
  `A file was renamed or moved (rename, renameat, renameat2). ${RELATIVE}`,
  RES_ERRNO,
  [
    ...recText("old_path", "The name it had."),
    ...recText("new_path", "The name it was given."),
    recNum("flags", "rename.rflags", "renameat2's flags: RENAME_NOREPLACE 1, RENAME_EXCHANGE 2, RENAME_WHITEOUT 4."),
  ],
  (ev) => `${ev.texts.old_path} -> ${ev.texts.new_path} res=${ev.res}`,
);

export const LINK_SCHEMA = recSchema(
  "link",
  `A link was made: a hard link (link, linkat) or a symbolic one (symlink, symlinkat). ${RELATIVE}`,
  RES_ERRNO,
  [
    {
      key: "kind",
      type: "string",
      doc: "`hard` or `symbolic`.",
      get: (ev) => (num(ev, "link.kind") === ds_link_kind.DS_LINK_HARD ? "hard" : "symbolic"),
    },
    ...recText(
      "old_path",
      "A hard link's existing file, absolute; a symbolic link's target exactly as given (the kernel stores it as text).",
    ),
    ...recText("new_path", "The new link's absolute path."),
    recNum("flags", "link.lflags", "linkat's flags (AT_SYMLINK_FOLLOW 0x400, AT_EMPTY_PATH 0x1000)."),
  ],
  (ev) => `${ev.texts.new_path} -> ${ev.texts.old_path} res=${ev.res}`,
);

export const UNLINK_SCHEMA = recSchema(
  "unlink",
  `A file was removed (unlink, unlinkat); with --events unlink. ${RELATIVE}`,
  RES_ERRNO,
  [...recText("path", "The removed name's absolute path.")],
  (ev) => `${ev.texts.path} res=${ev.res}`,
);

export const RMDIR_SCHEMA = recSchema(
  "rmdir",
  `A directory was removed (rmdir, unlinkat with AT_REMOVEDIR); with --events rmdir. ${RELATIVE}`,
  RES_ERRNO,
  [...recText("path", "The removed directory's absolute path.")],
  (ev) => `${ev.texts.path} res=${ev.res}`,
);

export const MOUNT_SCHEMA = recSchema(
  "mount",
  "A file system was mounted, bound, moved or remounted (mount's syscall tracepoints; the new mount API's fsmount/move_mount is not seen).",
  RES_ERRNO,
  [
    ...recText("source", "The source as given: a device, a directory (a bind), or a name (`tmpfs`, `proc`)."),
    ...recText("mount_point", `Where, absolute. ${RELATIVE}`),
    ...recText("fs_type", "The file system type as given (empty for a bind or a remount)."),
    recNum("flags", "mount.mflags", "The MS_* flags (MS_RDONLY 1, MS_REMOUNT 0x20, MS_BIND 0x1000, ...)."),
  ],
  (ev) => `${ev.texts.source} on ${ev.texts.mount_point} type ${ev.texts.fs_type} res=${ev.res}`,
);

export const LOAD_MODULE_SCHEMA = recSchema(
  "load_module",
  "A kernel module was loaded (init_module, finit_module). Unavailable on a kernel without module support (CONFIG_MODULES off: no such syscalls); the agent says so when it starts.",
  RES_ERRNO,
  [
    ...recText("path", "finit_module's file, absolute; empty for init_module (an image from memory)."),
    recNum("fd", "load_module.fd", "finit_module's fd, or -1 for init_module."),
    recNum("flags", "load_module.mflags", "finit_module's flags."),
  ],
  (ev) => `${ev.texts.path} res=${ev.res}`,
);

export const FILE_SCHEMAS = [
  CREATE_FILE_SCHEMA,
  RENAME_SCHEMA,
  LINK_SCHEMA,
  UNLINK_SCHEMA,
  RMDIR_SCHEMA,
  MOUNT_SCHEMA,
  LOAD_MODULE_SCHEMA,
];
