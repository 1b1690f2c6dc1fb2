/**
 * Names of the syscalls the agent hooks, by number. A record carries the
 * number its sys_exit tracepoint saw (`syscall` in DS_RECORD_HEAD), which is
 * the architecture's own: x86-64 keeps its historical table, arm64 the
 * generic one. Only the hooked syscalls are here; any other number renders as
 * itself.
 */
const X64: Readonly<Record<number, string>> = {
  59: "execve",
  62: "kill",
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
  157: "prctl",
  200: "tkill",
  234: "tgkill",
  319: "memfd_create",
  322: "execveat",
};

const ARM64: Readonly<Record<number, string>> = {
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
  221: "execve",
  279: "memfd_create",
  281: "execveat",
};

/** The name of a hooked syscall on this machine's architecture, or its number as text. */
export function syscallName(nr: number, arch: string = process.arch): string {
  return (arch === "arm64" ? ARM64 : X64)[nr] ?? String(nr);
}
