/**
 * Session.stop() when a drain fails (a run that ends in error): the teardown
 * still happens, and the kernel's count of what it could not output still
 * reaches the summary (read before the object closes), as do the lines the
 * reorder window held. A Session built around stand-ins for its reader and
 * object: the real ones need the kernel, and a failing drain cannot be had
 * from it on demand.
 */
import { expect, test } from "bun:test";
import { LineWindow } from "../../src/agent/line-window.ts";
import { Session } from "../../src/agent/session.ts";

/** A session whose every drain throws `failure`; `closed` says what its stop closed, in order. */
function failingSession(failure: string, window = new LineWindow(), outputFails = 0) {
  const closed: string[] = [];
  const s = Object.create(Session.prototype) as Session;
  Object.assign(s, {
    counts: { events: 3, malformed: 0, lost: 0, corrupt: 0, bytes: 0 },
    stopped: false,
    timer: null,
    listening: false,
    window,
    reorder: null,
    opts: { intervalMs: 100 },
    lossSeen: [],
    heldAtStop: 0,
    kernelCountersAtStop: null,
    obj: {
      silence() {},
      detach(between: () => void) {
        between();
      },
      close() {
        closed.push("object");
      },
    },
    reader: {
      consume() {
        throw new Error(failure);
      },
      lost: () => 0,
      badRecords: () => 0,
      close() {
        closed.push("reader");
      },
    },
    kernelCounters: () => ({ output_fail: outputFails }),
  });
  return { s, closed };
}

test("a drain that throws at the stop: reader and object closed, lost from the kernel's counters, the error passed on", () => {
  const { s, closed } = failingSession("a handler failed on a record", new LineWindow(), 7);
  expect(() => s.stop()).toThrow("a handler failed on a record");
  expect(closed).toEqual(["reader", "object"]);
  expect(s.counts.lost).toBe(7);
  expect(s.kernelCountersAtStop).toEqual({ output_fail: 7 } as unknown as typeof s.kernelCountersAtStop);
  s.stop(); // twice: nothing more
  expect(closed).toEqual(["reader", "object"]);
});

test("lines the reorder window held when the last drain failed are counted, not dropped unsaid", () => {
  const window = new LineWindow();
  for (const [key, text] of [
    [1, "a\n"],
    [2, "b\n"],
  ] as const) {
    const out = window.out(0, text.length);
    const start = out.len;
    out.buf.write(text, start);
    out.len += text.length;
    window.push(key, start, out.len);
  }
  const { s } = failingSession("the reader failed", window);
  expect(() => s.stop()).toThrow("the reader failed");
  expect(s.heldAtStop).toBe(2);
});
