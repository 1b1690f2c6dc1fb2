/**
 * `--spool DIR`: batches the server did not take, on disk, oldest first, until
 * it takes them. The agent runs as root and the batches name every command
 * line on the host: the directory is 0700 and each file 0600, and a directory
 * that is a symlink or another user's is refused. Each batch is written to a
 * temporary name, fsync'd, renamed and the directory fsync'd, so a crash
 * leaves whole batches or none. Past `capBytes` the oldest batches are
 * deleted and counted (the caller reports them as sink_dropped).
 *
 * File names carry the order and the row count: `<order, 16 digits>-<rows>.gz`.
 * All I/O is asynchronous (the thread pool), never on the drain loop.
 */
import { chmodSync, closeSync, constants, lstatSync, mkdirSync, openSync, readdirSync, rmSync } from "node:fs";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { UsageError } from "../errors.ts";
import { tryLockExclusive } from "../ffi/libc.ts";
import { checkTrustedDirectory } from "../output/trusted-path.ts";

export interface SpoolEntry {
  order: number;
  rows: number;
  bytes: number;
  name: string;
}

const NAME = /^(\d{16})-(\d+)\.gz$/;

export class Spool {
  readonly dir: string;
  private readonly entries: SpoolEntry[] = [];
  private nextOrder = 1;
  private total = 0;
  /** The entry being sent: never the one the cap deletes. */
  private busy: SpoolEntry | null = null;
  /** Appends, one after another (their order is the spool's). */
  private chain: Promise<void> = Promise.resolve();
  /** The directory, held with flock while this spool uses it; -1 once closed. */
  private lockFd: number;

  constructor(
    dir: string,
    readonly capBytes: number,
    /** Called for the batches the cap deleted. */
    private readonly onDrop: (rows: number, batches: number) => void,
  ) {
    this.dir = openSpoolDir(dir);
    this.lockFd = lockSpool(dir, this.dir);
    for (const name of readdirSync(this.dir)) {
      // A batch a crash interrupted before its rename: never acknowledged by the fsync, so never counted as spooled.
      if (name.startsWith(".") && name.endsWith(".gz.tmp")) rmSync(join(this.dir, name), { force: true });
      const m = NAME.exec(name);
      if (m === null) continue;
      const st = lstatSync(join(this.dir, name));
      if (!st.isFile()) continue;
      if ((st.mode & 0o777) !== 0o600) chmodSync(join(this.dir, name), 0o600);
      this.entries.push({ order: Number(m[1]), rows: Number(m[2]), bytes: st.size, name });
    }
    this.entries.sort((a, b) => a.order - b.order);
    for (const e of this.entries) this.total += e.bytes;
    this.nextOrder = (this.entries.at(-1)?.order ?? 0) + 1;
  }

  get batches(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.total;
  }

  get rows(): number {
    return this.entries.reduce((n, e) => n + e.rows, 0);
  }

  /** Lets the directory go (its lock), for another agent or the next start; the files stay. */
  close(): void {
    if (this.lockFd < 0) return;
    closeSync(this.lockFd);
    this.lockFd = -1;
  }

  /** Writes one compressed batch durably at the end of the queue, then applies the cap. */
  append(gz: Uint8Array, rows: number): Promise<void> {
    const run = this.chain.then(() => this.write(gz, rows));
    this.chain = run.catch(() => {});
    return run;
  }

  /** Resolves when every append so far has finished. */
  settled(): Promise<void> {
    return this.chain;
  }

  private async write(gz: Uint8Array, rows: number): Promise<void> {
    const order = this.nextOrder++;
    const name = `${String(order).padStart(16, "0")}-${rows}.gz`;
    const tmp = join(this.dir, `.${name}.tmp`);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await fh.writeFile(gz);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, name));
    await syncDir(this.dir);
    this.entries.push({ order, rows, bytes: gz.length, name });
    this.total += gz.length;
    await this.applyCap();
  }

  private async applyCap(): Promise<void> {
    let rows = 0;
    let batches = 0;
    // The newest batch stays whatever its size: it is the one that says the most recent thing.
    while (this.total > this.capBytes && this.entries.length > 1) {
      const i = this.entries[0] === this.busy ? 1 : 0;
      if (i >= this.entries.length - 1) break;
      const [e] = this.entries.splice(i, 1);
      this.total -= e!.bytes;
      rows += e!.rows;
      batches++;
      await unlink(join(this.dir, e!.name)).catch(() => {});
    }
    if (batches > 0) this.onDrop(rows, batches);
  }

  /** The oldest batch (or the one `skip` places after it), marked busy until done() or release(); null when none. */
  take(skip = 0): SpoolEntry | null {
    const e = this.entries[skip] ?? null;
    this.busy = e;
    return e;
  }

  /** The oldest batch, not marked. */
  oldest(): SpoolEntry | null {
    return this.entries[0] ?? null;
  }

  read(e: SpoolEntry): Promise<Buffer> {
    return readFile(join(this.dir, e.name));
  }

  /** The server has it (or it is dropped): delete it. False when it was gone already (the cap took it). */
  async done(e: SpoolEntry): Promise<boolean> {
    if (this.busy === e) this.busy = null;
    const i = this.entries.indexOf(e);
    if (i < 0) return false;
    this.entries.splice(i, 1);
    this.total -= e.bytes;
    await unlink(join(this.dir, e.name)).catch(() => {});
    return true;
  }

  release(): void {
    this.busy = null;
  }
}

/**
 * Creates DIR 0700, or checks the one there. Its parent is checked first (see
 * checkTrustedDirectory: no symlink or directory on the way that another user
 * could change), and DIR is then used by its resolved path: nothing is created
 * or chmodded through a link.
 */
/**
 * One agent per spool: each numbers its batches from what the directory held
 * at its start, and removes the temporary files it finds there, so two would
 * overwrite each other's batches and delete each other's writes, unsaid.
 * Returns the descriptor that holds the lock.
 */
function lockSpool(raw: string, dir: string): number {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  let taken: boolean;
  try {
    taken = tryLockExclusive(fd);
  } catch (e) {
    closeSync(fd);
    throw new UsageError(`--spool ${raw}: cannot lock it (${(e as Error).message})`);
  }
  if (!taken) {
    closeSync(fd);
    throw new UsageError(`--spool ${raw}: another agent is using it: give each agent a spool of its own`);
  }
  return fd;
}

function openSpoolDir(raw: string): string {
  let parent: string;
  try {
    parent = checkTrustedDirectory(dirname(resolve(raw)), false);
  } catch (e) {
    throw new UsageError(`--spool ${raw}: ${(e as Error).message}`);
  }
  const name = basename(resolve(raw));
  if (name === "") throw new UsageError(`--spool ${raw}: / is no spool; name a directory of the spool's own`);
  const dir = join(parent, name);
  let created = true;
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST")
      throw new UsageError(`--spool ${raw}: cannot create (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    created = false;
  }
  const st = lstatSync(dir);
  const me = process.geteuid?.() ?? 0;
  if (st.isSymbolicLink()) throw new UsageError(`--spool ${raw}: is a symlink`);
  if (!st.isDirectory()) throw new UsageError(`--spool ${raw}: not a directory`);
  if (st.uid !== me) throw new UsageError(`--spool ${raw}: owned by uid ${st.uid}`);
  // A directory others may write in (/tmp, /var/tmp, /dev/shm) is shared, not a spool: tightening it would break
  // everyone else's use of it. Only one of its own, merely readable by others, is made 0700.
  if ((st.mode & 0o1022) !== 0)
    throw new UsageError(
      `--spool ${raw}: a directory others can write in (mode ${(st.mode & 0o7777).toString(8)}); name a directory of the spool's own, e.g. /var/lib/dual-slot/spool`,
    );
  if ((st.mode & 0o777) !== 0o700) {
    // Tightened only when it is the spool's own (made now, or holding nothing but batches): an existing
    // directory with other files (/var/lib, /etc) is someone else's to keep readable.
    const foreign = created ? undefined : readdirSync(dir).find((f) => !NAME.test(f) && !/^\..*\.gz\.tmp$/.test(f));
    if (foreign !== undefined)
      throw new UsageError(
        `--spool ${raw}: an existing directory (mode ${(st.mode & 0o777).toString(8)}) with other files in it (${foreign}); name a directory of the spool's own`,
      );
    chmodSync(dir, 0o700);
  }
  return dir;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
