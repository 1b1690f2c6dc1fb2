/** The adaptive drain period's rules, one by one. */
import { describe, expect, test } from "bun:test";
import { IDLE_DRAIN_MS, MIN_DRAIN_MS, nextBacklogWait, nextDrainPeriod } from "../../src/agent/drain-period.ts";

describe("drain period", () => {
  test("a quiet drain keeps --interval", () => {
    expect(nextDrainPeriod(100, 0, 100)).toBe(100);
    expect(nextDrainPeriod(100, 0.05, 100)).toBe(100);
  });

  test("past a quarter full, the period shrinks in proportion, so the next drain sees a quarter", () => {
    expect(nextDrainPeriod(100, 0.5, 100)).toBe(50);
    expect(nextDrainPeriod(100, 1, 100)).toBe(25);
    expect(nextDrainPeriod(40, 0.4, 100)).toBe(25);
  });

  test("never below 5 ms, however full", () => {
    expect(MIN_DRAIN_MS).toBe(5);
    expect(nextDrainPeriod(10, 1, 100)).toBe(5);
    expect(nextDrainPeriod(5, 1, 100)).toBe(5);
  });

  test("between 10% and a quarter, the period holds", () => {
    for (const fill of [0.1, 0.2, 0.25]) expect(nextDrainPeriod(20, fill, 100)).toBe(20);
  });

  test("below 10%, it doubles back towards --interval, never past it", () => {
    expect(nextDrainPeriod(5, 0.01, 100)).toBe(10);
    expect(nextDrainPeriod(10, 0.09, 100)).toBe(20);
    expect(nextDrainPeriod(80, 0, 100)).toBe(100);
    expect(nextDrainPeriod(100, 0, 100)).toBe(100);
  });

  test("a burst then calm: down to the floor, back up to --interval", () => {
    let ms = 100;
    const seen: number[] = [];
    for (const fill of [1, 1, 1, 0.3, 0, 0, 0, 0, 0]) {
      ms = nextDrainPeriod(ms, fill, 100);
      seen.push(ms);
    }
    expect(seen).toEqual([25, 6.25, 5, 5, 10, 20, 40, 80, 100]);
  });
});

describe("drain period when a full buffer wakes the agent (perf)", () => {
  const idle = IDLE_DRAIN_MS;

  test("drains that find nothing double the period past --interval, up to the idle period", () => {
    expect(idle).toBe(1000);
    let ms = 100;
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      ms = nextDrainPeriod(ms, 0, 100, idle);
      seen.push(ms);
    }
    expect(seen).toEqual([200, 400, 800, 1000, 1000, 1000]);
  });

  test("anything read brings it back to --interval at once", () => {
    expect(nextDrainPeriod(1000, 0.001, 100, idle)).toBe(100);
    expect(nextDrainPeriod(1000, 0.2, 100, idle)).toBe(100);
  });

  test("a burst after an idle spell shrinks from --interval, not from the idle period", () => {
    expect(nextDrainPeriod(1000, 0.5, 100, idle)).toBe(50);
    expect(nextDrainPeriod(1000, 1, 100, idle)).toBe(25);
  });

  test("an --interval longer than the idle period stays the longest wait", () => {
    expect(nextDrainPeriod(5000, 0, 5000, idle)).toBe(5000);
    expect(nextDrainPeriod(2500, 0, 5000, idle)).toBe(5000);
  });

  test("without a wake-up (ring buffer) an empty drain never waits past --interval", () => {
    expect(nextDrainPeriod(100, 0, 100)).toBe(100);
    expect(nextDrainPeriod(100, 0, 100, 100)).toBe(100);
  });
});

describe("output waiting for a reader", () => {
  test("a reader that took bytes is written to again within 5 ms, whatever --interval is", () => {
    expect(nextBacklogWait(5, true, 100)).toBe(5);
    expect(nextBacklogWait(80, true, 100)).toBe(5);
    expect(nextBacklogWait(80, true, 2)).toBe(2);
  });

  test("one that took nothing is asked half as often each drain, back to --interval", () => {
    const waits: number[] = [];
    let w = MIN_DRAIN_MS;
    for (let i = 0; i < 6; i++) {
      w = nextBacklogWait(w, false, 100);
      waits.push(w);
    }
    expect(waits).toEqual([10, 20, 40, 80, 100, 100]);
  });
});
