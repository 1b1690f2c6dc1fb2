/**
 * `dual-slot stats`: the per-CPU counters of an agent that is already running,
 * found through the kernel's id walk (no pinning, no cooperation from the agent).
 */
import { defineCommand } from "citty";
import { prepareHost } from "../agent/prepare.ts";
import { optionalInt } from "../cli/args.ts";
import { possibleCpus } from "../ebpf/info.ts";
import { HostError, UsageError } from "../errors.ts";
import { log, setVerbose } from "../log.ts";
import { PipeClosed } from "../output/sink.ts";
import { writeStdout } from "../output/stdout.ts";
import { type Agent, agentConfig, findAgents, type Selection, type Snapshot, selectAgent, snapshot } from "./agents.ts";
import { type AgentView, type StatsView, statsJson, statsTable } from "./report.ts";

export const statsArgs = {
  json: {
    type: "boolean",
    default: false,
    description: "one JSON object per agent per refresh (NDJSON) instead of the table",
  },
  watch: {
    type: "boolean",
    default: false,
    description: "refresh every second until Ctrl+C or until the agent exits; adds an events/s rate",
  },
  pid: { type: "string", description: "report the agent held by process N (default: the newest attached agent)" },
  id: {
    type: "string",
    description:
      "report the agent whose ds_counters map id (or ds_exec program id) is N, as listed by --all or bpftool",
  },
  all: { type: "boolean", default: false, description: "report every loaded agent, oldest first" },
  verbose: { type: "boolean", default: false, description: "debug logs, including libbpf's own" },
} as const;

function view(
  sel: Selection,
  cfg: AgentView["config"],
  found: number,
  s: Snapshot,
  prev: Snapshot | undefined,
): StatsView {
  const a = sel.agent;
  const holder = a.holders[0];
  const secs = prev === undefined ? 0 : (s.atMs - prev.atMs) / 1000;
  return {
    agent: {
      pid: holder?.pid ?? null,
      comm: holder?.comm ?? null,
      progId: a.prog?.id ?? null,
      attached: a.attached,
      countersMapId: a.counters.id,
      scratchMapId: a.scratch?.id ?? null,
      slots: a.scratch?.maxEntries ?? null,
      valueSize: a.scratch?.valueSize ?? null,
      config: cfg,
      why: sel.why,
    },
    agentsFound: found,
    total: s.total,
    perCpu: s.perCpu,
    runCnt: s.runCnt,
    runTimeNs: s.runTimeNs,
    eventsPerSec: prev === undefined || secs <= 0 ? null : (s.total.events - prev.total.events) / secs,
  };
}

export default defineCommand({
  meta: {
    name: "stats",
    description:
      "Per-CPU counters of a running agent: events emitted, output failures (kernel-side drops), guard detections, and how often each heap slot was taken. Finds the agent by walking the kernel's map and program ids (needs root; nothing is pinned).",
  },
  args: statsArgs,
  async run({ args }) {
    setVerbose(args.verbose === true);
    const pid = optionalInt("pid", args.pid, 1, 0x7fffffff);
    const id = optionalInt("id", args.id, 1, 0xffffffff);
    if (args.all && (pid !== undefined || id !== undefined))
      throw new UsageError("--all reports every agent; drop --pid/--id");
    if (pid !== undefined && id !== undefined)
      throw new UsageError("--pid and --id each name one agent: give one of them");

    prepareHost();
    const cpus = possibleCpus();
    const agents = findAgents();
    if (agents.length === 0) {
      throw new HostError(
        "no dual-slot agent is loaded (start one with `dual-slot run`; stats finds it by map name, no pinning needed)",
      );
    }
    const chosen: Selection[] = args.all
      ? agents.map((agent, i) => ({ agent, why: `agent ${i + 1} of ${agents.length}, oldest first` }))
      : [selectAgent(agents, { pid, mapId: id })];
    const configs = new Map<Agent, AgentView["config"]>(chosen.map((c) => [c.agent, agentConfig(c.agent)]));
    const prev = new Map<Agent, Snapshot>();

    /** One refresh: the text to print, or null once no chosen agent is left. */
    const render = (): string | null => {
      const out: string[] = [];
      let alive = 0;
      for (const sel of chosen) {
        const s = snapshot(sel.agent, cpus);
        if (s === null) {
          if (args.watch) log.info(`agent with ds_counters map ${sel.agent.counters.id} has exited`);
          continue;
        }
        alive++;
        const v = view(sel, configs.get(sel.agent) ?? null, agents.length, s, prev.get(sel.agent));
        prev.set(sel.agent, s);
        if (args.json) out.push(statsJson(v));
        else out.push(...statsTable(v), "");
      }
      if (alive === 0) return null;
      if (args.json) return out.map((l) => `${l}\n`).join("");
      const clear = args.watch && process.stdout.isTTY ? "\x1b[H\x1b[2J" : "";
      const stamp = args.watch ? `${new Date().toISOString()}\n` : "";
      return `${clear + stamp + out.join("\n").trimEnd()}\n${args.watch && !clear ? "\n" : ""}`;
    };

    const first = render();
    if (first === null) throw new HostError("the agent exited before its counters could be read");
    let stopped = false;
    try {
      await writeStdout(first);
    } catch (e) {
      if (e instanceof PipeClosed) return;
      throw e;
    }
    if (!args.watch) return;

    // Ends on a signal, when the agents are gone, or when stdout fails (EPIPE quietly).
    await new Promise<void>((resolve, reject) => {
      let busy = false;
      const stop = (e?: unknown) => {
        if (stopped) return;
        stopped = true;
        clearInterval(timer);
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        if (e === undefined || e instanceof PipeClosed) resolve();
        else reject(e);
      };
      const onSignal = () => stop();
      const timer = setInterval(() => {
        if (busy) return; // the reader is still taking the last refresh
        const text = render();
        if (text === null) return stop();
        busy = true;
        writeStdout(text, { giveUp: () => stopped })
          .then(() => {
            busy = false;
          })
          .catch(stop);
      }, 1000);
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    });
  },
});
