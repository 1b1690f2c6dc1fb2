/**
 * Who the sink is to ClickHouse: from `--sink-credentials FILE` or the
 * environment (DUAL_SLOT_CLICKHOUSE_USER, DUAL_SLOT_CLICKHOUSE_PASSWORD),
 * never from the command line. The agent runs as root: a file another user
 * can read leaks the password, one another user can write lets them point the
 * agent at their own account, so either is refused, as is a symlink.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";

export interface SinkCredentials {
  user: string;
  password: string;
}

export const USER_ENV = "DUAL_SLOT_CLICKHOUSE_USER";
export const PASSWORD_ENV = "DUAL_SLOT_CLICKHOUSE_PASSWORD";

/**
 * The file holds `user=NAME` and `password=SECRET` lines (blank lines and #
 * comments skipped); the password is the rest of its line, as written.
 */
export function parseCredentialsText(text: string, where: string): SinkCredentials {
  const out: Partial<SinkCredentials> = {};
  for (const line of text.split("\n")) {
    const l = line.replace(/\r$/, "");
    if (l.trim() === "" || l.trimStart().startsWith("#")) continue;
    const eq = l.indexOf("=");
    const key = eq < 0 ? "" : l.slice(0, eq).trim();
    if (key !== "user" && key !== "password")
      throw new UsageError(`${where}: expected user=NAME and password=SECRET lines`);
    out[key] = l.slice(eq + 1);
  }
  if (out.user === undefined || out.user.trim() === "") throw new UsageError(`${where}: no user= line`);
  return { user: out.user.trim(), password: out.password ?? "" };
}

/** Reads FILE after refusing one that is not ours alone (see the module comment). */
export function readCredentialsFile(path: string): SinkCredentials {
  const where = `--sink-credentials ${path}`;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${where}: ${code === "ELOOP" ? "is a symlink" : `cannot open (${code ?? String(e)})`}`);
  }
  try {
    const st = fstatSync(fd);
    const me = process.geteuid?.() ?? 0;
    if (!st.isFile()) throw new UsageError(`${where}: not a regular file`);
    if (st.uid !== me && st.uid !== 0) throw new UsageError(`${where}: owned by uid ${st.uid}, not by us or root`);
    if ((st.mode & 0o077) !== 0)
      throw new UsageError(
        `${where}: mode ${(st.mode & 0o777).toString(8).padStart(4, "0")} lets other users read or write it (chmod 600)`,
      );
    return parseCredentialsText(readFileSync(fd, "utf8"), where);
  } finally {
    closeSync(fd);
  }
}

/** The file if given, else the environment, else none (the server's default user). */
export function sinkCredentials(
  file: string | undefined,
  env: Record<string, string | undefined> = process.env,
): SinkCredentials | null {
  if (file !== undefined && file !== "") return readCredentialsFile(file);
  const user = env[USER_ENV];
  if (user === undefined || user === "") {
    if ((env[PASSWORD_ENV] ?? "") !== "") throw new UsageError(`${PASSWORD_ENV} is set but ${USER_ENV} is not`);
    return null;
  }
  return { user, password: env[PASSWORD_ENV] ?? "" };
}

/** The Authorization header ClickHouse's HTTP interface takes (basic auth). */
export function authorization(c: SinkCredentials): string {
  return `Basic ${Buffer.from(`${c.user}:${c.password}`).toString("base64")}`;
}
