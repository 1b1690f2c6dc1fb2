/**
 * Native threads, for one thing: a C call that blocks for tens of milliseconds
 * in the kernel (bpf_object__load, the verifier) running beside the JS thread.
 *
 * The symbols come from libpthread.so.0, which every glibc has: before 2.34
 * pthread_create is only there, and from 2.34 it is a stub whose lookups fall
 * through to libc.so.6 (dlsym searches a handle's dependencies too).
 */
import { dlopen, type Pointer, ptr } from "bun:ffi";

const SYMBOLS = {
  pthread_create: { args: ["ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  pthread_join: { args: ["u64", "ptr"], returns: "i32" },
} as const;

let lib: ReturnType<typeof open> | undefined;

function open() {
  return dlopen("libpthread.so.0", SYMBOLS).symbols;
}

function pthread() {
  lib ??= open();
  return lib;
}

/** A native thread running `fn(arg)`, to be joined exactly once. */
export interface NativeThread {
  /** Waits for the thread; the low 32 bits of what `fn` returned (an int-returning C function's value). */
  join(): number;
}

/**
 * Starts `fn(arg)` on a new thread. `fn` is a C function taking one pointer
 * and returning an int or a pointer; on the ABIs Bun runs on (x86-64, arm64)
 * such a function is a valid start routine, its int left in the low half of
 * the thread's result. It must not call back into JS (no JSCallback runs
 * outside the JS thread).
 */
export function startThread(fn: Pointer, arg: Pointer): NativeThread {
  const id = new BigUint64Array(1);
  const err = pthread().pthread_create(ptr(id), null, fn, arg);
  if (err !== 0) throw new Error(`pthread_create failed: error ${err}`);
  let joined = false;
  return {
    join(): number {
      if (joined) throw new Error("thread already joined");
      joined = true;
      const result = new BigUint64Array(1);
      const e = pthread().pthread_join(id[0]!, ptr(result));
      if (e !== 0) throw new Error(`pthread_join failed: error ${e}`);
      return Number(BigInt.asIntN(32, result[0]!));
    },
  };
}
