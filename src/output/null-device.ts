/**
 * The null device, for writes nobody reads (the warm-up's lines): opened
 * only when the path is the null device itself. The agent runs as root, and
 * `/dev/null` is only a name: a regular file put in its place would fill up
 * with whatever is written there, and a FIFO would block the open until a
 * reader came.
 */
import { closeSync, constants, fstatSync, openSync } from "node:fs";

/** The null device's number, major 1, minor 3, as stat(2)'s st_rdev encodes it. */
const NULL_DEVICE = (1 << 8) | 3;

/**
 * A write-only fd on `path` if it is the null device, else -1: opened
 * without O_CREAT (a missing one is not created) and O_NONBLOCK (a FIFO's
 * open fails at once instead of waiting), then checked with fstat.
 */
export function openNullDevice(path = "/dev/null"): number {
  let fd = -1;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (st.isCharacterDevice() && st.rdev === NULL_DEVICE) return fd;
  } catch {
    // missing, or a FIFO without a reader (ENXIO): not the null device
  }
  if (fd >= 0) closeSync(fd);
  return -1;
}
