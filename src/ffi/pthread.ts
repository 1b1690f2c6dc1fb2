/**
 * The one libpthread binding table: native threads for work that is only
 * kernel waiting. Destroying a link on a syscall tracepoint waits for an RCU
 * grace period (perf_trace_event_unreg -> tracepoint_synchronize_unregister),
 * tens of ms each; the default event set has about thirty such links, so one
 * after the other they held SIGTERM for a second. Run on native threads at
 * once, the waits overlap into about one grace period.
 *
 * libpthread.so.0, not libc.so.6: glibc before 2.34 keeps pthread_create
 * there (2.34 and later keep a stub that forwards). No JavaScript runs on
 * these threads: each runs one native function (bpf_link__destroy) and ends.
 */
import { dlopen, FFIType, type Pointer, ptr } from "bun:ffi";

export const PTHREAD_SYMBOLS = {
  pthread_create: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  pthread_join: { args: [FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
} as const;

let opened: ReturnType<typeof open> | null | undefined;

function open() {
  return dlopen("libpthread.so.0", PTHREAD_SYMBOLS).symbols;
}

function lib(): ReturnType<typeof open> | null {
  if (opened === undefined) {
    try {
      opened = open();
    } catch {
      opened = null;
    }
  }
  return opened;
}

/** The native address behind a bun:ffi function (Bun sets `ptr` on each; its types do not say so). */
export function nativeAddress(fn: unknown): Pointer {
  const p = (fn as { ptr?: unknown }).ptr;
  if (typeof p !== "number" || p === 0) throw new Error("bun:ffi function without a native address");
  return p as Pointer;
}

/**
 * Calls `fn(arg)` for every arg, each on its own thread, and waits for all.
 * `fn` is a native function taking one pointer (a pthread start routine's
 * ABI; its int result is ignored). Returns the args it could not start a
 * thread for: the caller runs those itself.
 */
export function onThreads(fn: Pointer, args: readonly Pointer[]): Pointer[] {
  const l = lib();
  if (l === null) return [...args];
  const ids = new BigUint64Array(args.length);
  const started: number[] = [];
  const left: Pointer[] = [];
  args.forEach((arg, i) => {
    if (l.pthread_create(ptr(ids, i * 8), null, fn, arg) === 0) started.push(i);
    else left.push(arg);
  });
  for (const i of started) l.pthread_join(ids[i]!, null);
  return left;
}
