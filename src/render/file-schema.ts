/**
 * The file records' schemas: create_file, rename, link, unlink, rmdir, mount,
 * load_module (bpf/file_events.bpf.h). Paths are absolute; a path built from
 * a relative name keeps its `.` and `..` as given.
 */
import { ds_link_kind } from "../wire/layout.gen.ts";
import { sockFields } from "./net-schema.ts";
import {
  member,
  nameMap,
  pathFlags,
  RES_ERRNO,
  recField,
  recNum,
  recSchema,
  recText,
  resolvedFlag,
  str,
} from "./record-fields.ts";
import type { SubField, SummaryPart } from "./schema.ts";

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

/** The creating process's socket: sockFields' fields, in the order this object has always had. */
const SOCKET: SubField[] = (() => {
  const byKey = new Map(sockFields("create_file.sock").map((f) => [f.key, f]));
  return ["fd", "family", "protocol", "sip", "sport", "dip", "dport"].map((key) => {
    const f = byKey.get(key)!;
    return { key, type: f.type, wire: f.wire! };
  });
})();

/** "<path> res=<res>" */
const pathRes = (path: string): SummaryPart[] => [str(path), " res=", member("res")];

const RELATIVE =
  "Relative names are joined to the directory they were resolved from (the cwd or a dirfd's); an absolute name to the process's root.";

export const CREATE_FILE_SCHEMA = recSchema(
  "create_file",
  "A file was created: an open with O_CREAT that created it (the kernel's FMODE_CREATED on the new file; an open of an existing file is not reported), an open with O_TMPFILE (an unnamed file: its `path` is the directory's with `/#<inode>` after it, as the kernel names it, and `path_deleted` is true: it has no name until a linkat gives it one), or mknod (open, openat, openat2, creat, mknod, mknodat syscall tracepoints). With the creating process's first inet socket, as Elkeid reports it: a download-and-drop shows here.",
  "open's new fd, or mknod's 0.",
  [
    ...recText(
      "path",
      `The new file's absolute path (for open, from the new file itself; for mknod, from the name given: ${RELATIVE})`,
    ),
    ...pathFlags("The new file"),
    recField("file_type", "string", "`file`, `fifo`, `char`, `block`, `socket`, ...", {
      from: "enum",
      member: "create_file.mode",
      mask: 0xf000,
      names: FILE_TYPES,
      otherwise: "unknown",
    }),
    recField("mode", "string", "Permission bits, octal (after the umask, for open).", {
      from: "octal",
      member: "create_file.mode",
      mask: 0xfff,
      digits: 4,
    }),
    recNum("dev", "create_file.dev", "The file's device, the kernel's encoding (`major << 20 | minor`); 0 for mknod."),
    recField("ino", "string", "Its inode number (0 for mknod).", { from: "member", member: "create_file.ino" }),
    recNum(
      "oflags",
      "create_file.oflags",
      "open's flags (O_CREAT 0x40, O_EXCL 0x80, O_TRUNC 0x200, O_TMPFILE 0x410000, ...); 0 for mknod.",
    ),
    recField(
      "socket",
      "object",
      "The creating process's first inet socket among its fds 0-15, if any: `fd`, `family`, `protocol`, `sip`, `sport`, `dip`, `dport`.",
      { from: "object", fields: SOCKET, ifNonZero: "create_file.sock.family" },
      true,
    ),
  ],
  pathRes("path"),
);

export const RENAME_SCHEMA = recSchema(
  "rename",
  `A file was renamed or moved (rename, renameat, renameat2). ${RELATIVE}`,
  RES_ERRNO,
  [
    ...recText("old_path", "The name it had."),
    ...recText("new_path", "The name it was given."),
    resolvedFlag(),
    recNum("flags", "rename.rflags", "renameat2's flags: RENAME_NOREPLACE 1, RENAME_EXCHANGE 2, RENAME_WHITEOUT 4."),
  ],
  [str("old_path"), " -> ", str("new_path"), " res=", member("res")],
);

export const LINK_SCHEMA = recSchema(
  "link",
  `A link was made: a hard link (link, linkat) or a symbolic one (symlink, symlinkat). ${RELATIVE}`,
  RES_ERRNO,
  [
    recField("kind", "string", "`hard` or `symbolic`.", {
      from: "enum",
      member: "link.kind",
      names: nameMap({ [ds_link_kind.DS_LINK_HARD]: "hard" }),
      otherwise: "symbolic",
    }),
    ...recText(
      "old_path",
      "A hard link's existing file, absolute; a symbolic link's target exactly as given (the kernel stores it as text).",
    ),
    ...recText("new_path", "The new link's absolute path."),
    resolvedFlag(),
    recNum("flags", "link.lflags", "linkat's flags (AT_SYMLINK_FOLLOW 0x400, AT_EMPTY_PATH 0x1000)."),
  ],
  [str("new_path"), " -> ", str("old_path"), " res=", member("res")],
);

export const UNLINK_SCHEMA = recSchema(
  "unlink",
  `A file was removed (unlink, unlinkat); with --events unlink. ${RELATIVE}`,
  RES_ERRNO,
  [...recText("path", "The removed name's absolute path."), resolvedFlag()],
  pathRes("path"),
);

export const RMDIR_SCHEMA = recSchema(
  "rmdir",
  `A directory was removed (rmdir, unlinkat with AT_REMOVEDIR); with --events rmdir. ${RELATIVE}`,
  RES_ERRNO,
  [...recText("path", "The removed directory's absolute path."), resolvedFlag()],
  pathRes("path"),
);

export const MOUNT_SCHEMA = recSchema(
  "mount",
  "A file system was mounted, bound, moved or remounted (mount's syscall tracepoints; the new mount API's fsmount/move_mount is not seen).",
  RES_ERRNO,
  [
    ...recText("source", "The source as given: a device, a directory (a bind), or a name (`tmpfs`, `proc`)."),
    ...recText("mount_point", `Where, absolute. ${RELATIVE}`),
    resolvedFlag(),
    ...recText("fs_type", "The file system type as given (empty for a bind or a remount)."),
    recNum("flags", "mount.mflags", "The MS_* flags (MS_RDONLY 1, MS_REMOUNT 0x20, MS_BIND 0x1000, ...)."),
  ],
  [str("source"), " on ", str("mount_point"), " type ", str("fs_type"), " res=", member("res")],
);

export const LOAD_MODULE_SCHEMA = recSchema(
  "load_module",
  "A kernel module was loaded (init_module, finit_module). Unavailable on a kernel without module support (CONFIG_MODULES off: no such syscalls); the agent says so when it starts.",
  RES_ERRNO,
  [
    ...recText("path", "finit_module's file, absolute; empty for init_module (an image from memory)."),
    ...pathFlags(
      "The module file (a module loaded from a file unlinked first, or from outside a chroot, hides its origin)",
    ),
    recNum("fd", "load_module.fd", "finit_module's fd, or -1 for init_module."),
    recNum("flags", "load_module.mflags", "finit_module's flags."),
  ],
  pathRes("path"),
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
