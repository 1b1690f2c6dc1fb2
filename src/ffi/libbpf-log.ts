/**
 * Routes libbpf's own log (libbpf_set_print) into consola. libbpf hands a
 * printf format and a va_list; vsnprintf formats it on the spot, since the
 * va_list is only valid during the callback. The last lines are kept so a load
 * failure can point at the verifier's reason even without --verbose.
 */
import { FFIType, JSCallback, type Pointer } from "bun:ffi";
import { log } from "../log.ts";
import { libbpf } from "./libbpf.ts";
import { formatVa } from "./libc.ts";

const LIBBPF_INFO = 1;
/** consola's trace level, where libbpf's debug lines are shown. */
const TRACE = 5;
const recent: string[] = [];
let cb: JSCallback | null = null;

export function installLibbpfPrint(): void {
  if (cb !== null) return;
  cb = new JSCallback(
    (level: number, fmt: Pointer, args: Pointer): number => {
      // Debug lines are shown only at trace level, which nothing sets but a test: a load sends
      // 3,500-4,800 of them (CO-RE relocations), and formatting each cost 3-8 ms of a start.
      if (level > LIBBPF_INFO && log.level < TRACE) return 0;
      const line = shorten(formatVa(fmt, args).trimEnd());
      if (line === "") return 0;
      recent.push(line);
      if (recent.length > 40) recent.shift();
      // Shown with --verbose; failures are reported by the call that failed, with the last lines as hint.
      if (level <= LIBBPF_INFO) log.debug(`libbpf: ${line}`);
      else log.trace(`libbpf: ${line}`);
      return 0;
    },
    { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  );
  libbpf().libbpf_set_print(cb.ptr);
}

/**
 * A verifier log is one message of up to megabytes; what explains a failed
 * load is its end (the rejected instruction, the reason, the stack sizes).
 */
function shorten(line: string): string {
  const MAX = 6000;
  if (line.length <= MAX) return line;
  const firstBreak = line.indexOf("\n");
  const head = firstBreak > 0 && firstBreak < 200 ? line.slice(0, firstBreak + 1) : "";
  return `${head}[... ${line.length - MAX} bytes of the log left out ...]\n${line.slice(line.length - MAX)}`;
}

/** libbpf's recent warnings, newest last. */
export function recentLibbpfLog(): readonly string[] {
  return recent;
}
