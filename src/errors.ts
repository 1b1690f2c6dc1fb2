/** Errors that end the program with one clear line and a non-zero exit. */

/** Bad flags or values: exit 2, like other CLI tools. */
export class UsageError extends Error {
  override name = "UsageError";
  readonly exitCode = 2;
}

/** The host cannot run the agent (privileges, kernel, BTF): exit 1. */
export class HostError extends Error {
  override name = "HostError";
  readonly exitCode: number = 1;
}
