/**
 * struct ds_common on real processes: a known 4-level chain's pid_tree, exec
 * ids that join each child to its parent's own exec event, the effective ids,
 * process group, session and UTS name, on the exec and the exit of the same
 * process; the namespace ids and the audit login against the kernel's own
 * numbers, also in new UTS and mount namespaces after a login; and a child run
 * under setpriv for the effective uid.
 */
import { expect, test } from "bun:test";
import { readFileSync, rmSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { type JsonEvent, parseEvents, parseSummary, startAgent, uniqueTrue } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

type Common = JsonEvent & {
  euid: number;
  egid: number;
  uid: number;
  gid: number;
  pgid: number;
  sid: number;
  sessionid: number;
  auid: number;
  pidns_id: number;
  mntns_id: number;
  nodename: string;
  exec_id: string;
  parent_exec_id: string;
  pid_tree: string;
};

/** This process's process group and session, from /proc/self/stat (fields 5 and 6). */
function selfGroupAndSession(): [number, number] {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return [Number(f[2]), Number(f[3])];
}

describeKernel("common fields (root)", { commands: ["setpriv", "unshare", "hostname"] }, () => {
  test("a 4-level chain: pid_tree exactly, exec ids joined, ids, group, session and nodename", async () => {
    const t = uniqueTrue("dsc");
    try {
      const agent = await startAgent(["--json", "--events", "exec,exit"]);
      // `; :` after each command keeps every shell from exec'ing its last command in place.
      const p = Bun.spawn(["/bin/sh", "-c", `/bin/sh -c '/bin/sh -c "${t.path}; :"; :'; :`], {
        stdout: "ignore",
        stderr: "ignore",
        stdin: "ignore",
      });
      expect(await p.exited).toBe(0);
      await Bun.sleep(300);
      const { stdout, stderr } = await agent.stop();
      const events = parseEvents(stdout) as Common[];
      const execOf = (pid: number) => events.find((e) => e.event === "exec" && e.pid === pid);

      const leaf = events.find((e) => e.event === "exec" && e.comm === t.comm);
      expect(leaf).toBeDefined();
      const c = execOf(leaf!.ppid);
      const b = c && execOf(c.ppid);
      const a = b && execOf(b.ppid);
      expect([a?.pid, a?.comm, b?.comm, c?.comm]).toEqual([p.pid, "sh", "sh", "sh"]);
      expect(a!.ppid).toBe(process.pid);

      const chain = `${leaf!.pid}.${t.comm}<${c!.pid}.sh<${b!.pid}.sh<${a!.pid}.sh<${process.pid}.`;
      expect(leaf!.pid_tree.startsWith(chain)).toBe(true);
      const levels = leaf!.pid_tree.split("<");
      expect(levels.length).toBeLessThanOrEqual(8);
      // Each entry is "pid.comm", and the walk ends at pid 1 when it gets there.
      for (const l of levels) expect(l).toMatch(/^\d+\..{1,15}$/);
      if (levels.length < 8) expect(levels.at(-1)!.startsWith("1.")).toBe(true);

      // Each child's parent_exec_id is its parent's exec_id, as the parent's own exec event said.
      expect(leaf!.parent_exec_id).toBe(c!.exec_id);
      expect(c!.parent_exec_id).toBe(b!.exec_id);
      expect(b!.parent_exec_id).toBe(a!.exec_id);
      const ids = new Set([leaf, c, b, a].map((e) => e!.exec_id));
      expect(ids.size).toBe(4);
      for (const e of [leaf, c, b, a]) expect(e!.exec_id).toMatch(new RegExp(`^\\d+:${e!.pid}:\\d+$`));

      // The exit of the same process carries the same identity.
      const exit = events.find((e) => e.event === "exit" && e.pid === leaf!.pid);
      expect(exit).toBeDefined();
      expect([exit!.exec_id, exit!.parent_exec_id, exit!.pid_tree]).toEqual([
        leaf!.exec_id,
        leaf!.parent_exec_id,
        leaf!.pid_tree,
      ]);

      const [pgid, sid] = selfGroupAndSession();
      for (const e of [leaf!, c!, b!, a!, exit!]) {
        expect([e.uid, e.euid, e.gid, e.egid]).toEqual([0, 0, 0, 0]);
        expect([e.pgid, e.sid]).toEqual([pgid, sid]);
        expect(e.nodename).toBe(hostname());
        // The chain inherited this process's namespaces and audit session: the kernel's own numbers for them.
        expect(e.pidns_id).toBe(statSync("/proc/self/ns/pid").ino);
        expect(e.mntns_id).toBe(statSync("/proc/self/ns/mnt").ino);
        expect(e.auid).toBe(Number(readFileSync("/proc/self/loginuid", "utf8")));
        expect(e.sessionid).toBe(Number(readFileSync("/proc/self/sessionid", "utf8")));
      }
      expect(parseSummary(stderr).lost).toBe("0");
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  }, 30_000);

  test("in new UTS and mount namespaces, after a login: nodename, mntns_id, pidns_id, auid and sessionid", async () => {
    const t = uniqueTrue("dsn");
    try {
      const agent = await startAgent(["--json", "--events", "exec"]);
      // Setting the login uid starts a new audit session; hostname changes only the new UTS namespace.
      const script = `echo 4321 > /proc/self/loginuid && hostname ds-uts-test && readlink /proc/self/ns/mnt && cat /proc/self/sessionid && echo && exec ${t.path}`;
      const p = Bun.spawn(["unshare", "--uts", "--mount", "--fork", "sh", "-c", script], {
        stdout: "pipe",
        stderr: "pipe",
        stdin: "ignore",
      });
      const [out, err, code] = await Promise.all([
        new Response(p.stdout).text(),
        new Response(p.stderr).text(),
        p.exited,
      ]);
      expect(code === 0 ? "ok" : err).toBe("ok");
      const [mnt = "", session = ""] = out.trim().split("\n");
      await Bun.sleep(300);
      const { stdout } = await agent.stop();
      const e = (parseEvents(stdout) as Common[]).find((x) => x.event === "exec" && x.comm === t.comm);
      expect(e).toBeDefined();
      expect(e!.nodename).toBe("ds-uts-test");
      expect(e!.mntns_id).toBe(Number(/\[(\d+)\]/.exec(mnt)?.[1]));
      expect(e!.mntns_id).not.toBe(statSync("/proc/self/ns/mnt").ino);
      expect(e!.pidns_id).toBe(statSync("/proc/self/ns/pid").ino);
      expect(e!.auid).toBe(4321);
      expect(e!.sessionid).toBe(Number(session));
      expect(e!.sessionid).not.toBe(Number(readFileSync("/proc/self/sessionid", "utf8")));
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  }, 30_000);

  test("under setpriv --reuid/--regid 65534: uid and euid, gid and egid", async () => {
    const t = uniqueTrue("dsu");
    try {
      const agent = await startAgent(["--json", "--events", "exec"]);
      const p = Bun.spawn(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.path], {
        stdout: "ignore",
        stderr: "ignore",
        stdin: "ignore",
      });
      expect(await p.exited).toBe(0);
      await Bun.sleep(300);
      const { stdout } = await agent.stop();
      const e = (parseEvents(stdout) as Common[]).find((x) => x.event === "exec" && x.comm === t.comm);
      expect(e).toBeDefined();
      expect([e!.uid, e!.euid, e!.gid, e!.egid]).toEqual([65534, 65534, 65534, 65534]);
      // setpriv exec'd the program in place: same pid and start, a new image, so a new exec id.
      expect(e!.pid).toBe(p.pid);
      const before = (parseEvents(stdout) as Common[]).find(
        (x) => x.event === "exec" && x.comm === "setpriv" && x.pid === p.pid,
      );
      expect(before).toBeDefined();
      expect(before!.exec_id).not.toBe(e!.exec_id);
      expect(before!.exec_id.split(":")[0]).toBe(e!.exec_id.split(":")[0]);
      expect(e!.pid_tree.startsWith(`${p.pid}.${t.comm}<${process.pid}.`)).toBe(true);
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  }, 30_000);
});
