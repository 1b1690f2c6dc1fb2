import { describe, expect, test } from "bun:test";
import { emulatorArtifact, oops } from "../../scripts/kernel-matrix.ts";

// The shape of an x86 oops on a 6.12 console (abridged), as the matrix's guests print it.
const CONSOLE = [
  "DSM case capture-perf rc=0 cs=1370",
  "[   24.801000] BUG: unable to handle page fault for address: 0000000029f5ea08",
  "[   24.801100] #PF: supervisor read access in kernel mode",
  "[   24.801200] Oops: Oops: 0000 [#1] PREEMPT_RT SMP NOPTI",
  "[   24.801300] CPU: 1 UID: 0 PID: 212 Comm: dual-slot Not tainted 6.12.117+deb12-rt-amd64 #1",
  "[   24.801400] RIP: 0010:rcu_core+0x2f1/0x5a0",
  "[   24.801500] Call Trace:",
  "[   24.801600]  <IRQ>",
  "[   24.801700]  ? __die+0x23/0x70",
  "[   24.801800]  handle_softirqs.isra.0+0xcd/0x2c0",
  "[   24.801900]  __irq_exit_rcu+0x9b/0xc0",
  "[   24.899127] CR2: 0000000029f5ea08 CR3: 0000000079596000 CR4: 0000000000751ef0",
  "[   24.900239] Kernel panic - not syncing: Fatal exception in interrupt",
];

describe("kernel matrix: a guest's oops", () => {
  test("is boiled down to its first line, the task, the RIP and the trace", () => {
    const s = oops(CONSOLE);
    expect(s).toBe(
      "BUG: unable to handle page fault for address: 0000000029f5ea08 | " +
        "CPU: 1 UID: 0 PID: 212 Comm: dual-slot Not tainted 6.12.117+deb12-rt-amd64 #1 | " +
        "RIP: 0010:rcu_core+0x2f1/0x5a0 | " +
        "trace: __die+0x23 < handle_softirqs.isra.0+0xcd < __irq_exit_rcu+0x9b",
    );
  });

  test("is absent from a clean console", () => {
    expect(oops(["DSM begin kernel=6.1.0", "[    1.0] Run /init as init process"])).toBeUndefined();
  });
});

describe("kernel matrix: which oops may be the emulator's", () => {
  test("an int3 trap (code patching seen half done under TCG) is marked apart from any other oops", () => {
    const int3 =
      "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI | CPU: 0 UID: 0 PID: 898 Comm: dual-slot Not tainted 6.12.117+deb12-cloud-amd64 #1 | RIP: 0010:syscall_trace_enter+0xd6/0x190";
    expect(emulatorArtifact(int3)).toBe(true);
    expect(emulatorArtifact(`the guest kernel oopsed (a case failed): ${int3}`)).toBe(true);
    expect(emulatorArtifact(oops(CONSOLE)!)).toBe(false);
    // 6.1 prints the trap without "Oops: ", and its report starts there.
    const six1 = oops([
      "DSM case flood rc=0 cs=1",
      "[   30.100000] int3: 0000 [#1] PREEMPT SMP NOPTI",
      "[   30.100100] CPU: 1 PID: 300 Comm: dual-slot Not tainted 6.1.0-41-cloud-amd64 #1",
      "[   30.100200] RIP: 0010:syscall_trace_enter.constprop.0+0x8f/0x1a0",
    ]);
    expect(six1).toStartWith("int3: 0000 [#1] PREEMPT SMP NOPTI | CPU: 1 PID: 300 Comm: dual-slot");
    expect(emulatorArtifact(six1!)).toBe(true);
  });
});
