/**
 * Names of the syscalls the agent hooks, by number. A record carries the
 * number its sys_exit tracepoint saw (`syscall` in DS_RECORD_HEAD), which is
 * the architecture's own: x86-64 keeps its historical table, arm64 the
 * generic one. Only the hooked syscalls are here; any other number renders as
 * itself.
 */
const X64: Readonly<Record<number, string>> = {
  2: "open",
  42: "connect",
  43: "accept",
  44: "sendto",
  45: "recvfrom",
  46: "sendmsg",
  47: "recvmsg",
  49: "bind",
  59: "execve",
  62: "kill",
  82: "rename",
  84: "rmdir",
  85: "creat",
  86: "link",
  87: "unlink",
  88: "symlink",
  101: "ptrace",
  105: "setuid",
  106: "setgid",
  112: "setsid",
  113: "setreuid",
  114: "setregid",
  117: "setresuid",
  119: "setresgid",
  122: "setfsuid",
  123: "setfsgid",
  133: "mknod",
  157: "prctl",
  165: "mount",
  175: "init_module",
  200: "tkill",
  234: "tgkill",
  257: "openat",
  259: "mknodat",
  263: "unlinkat",
  264: "renameat",
  265: "linkat",
  266: "symlinkat",
  288: "accept4",
  307: "sendmmsg",
  313: "finit_module",
  316: "renameat2",
  319: "memfd_create",
  322: "execveat",
  437: "openat2",
};

const ARM64: Readonly<Record<number, string>> = {
  33: "mknodat",
  35: "unlinkat",
  36: "symlinkat",
  37: "linkat",
  38: "renameat",
  40: "mount",
  56: "openat",
  105: "init_module",
  117: "ptrace",
  129: "kill",
  130: "tkill",
  131: "tgkill",
  143: "setregid",
  144: "setgid",
  145: "setreuid",
  146: "setuid",
  147: "setresuid",
  149: "setresgid",
  151: "setfsuid",
  152: "setfsgid",
  157: "setsid",
  167: "prctl",
  200: "bind",
  202: "accept",
  203: "connect",
  206: "sendto",
  207: "recvfrom",
  211: "sendmsg",
  212: "recvmsg",
  221: "execve",
  242: "accept4",
  269: "sendmmsg",
  273: "finit_module",
  276: "renameat2",
  279: "memfd_create",
  281: "execveat",
  437: "openat2",
};

/** The hooked syscalls' names by number on an architecture (this machine's by default). */
export function syscallNames(arch: string = process.arch): Readonly<Record<number, string>> {
  return arch === "arm64" ? ARM64 : X64;
}

/** The name of a hooked syscall on this machine's architecture, or its number as text. */
export function syscallName(nr: number, arch: string = process.arch): string {
  return syscallNames(arch)[nr] ?? String(nr);
}
