/**
 * The benchmarks' `--name=value` flags. Split at the first "=" only, so a
 * value may hold one (`--compare-env=MIMALLOC_PURGE_DELAY=-1`); a bare
 * `--name` is present (`has`) with no value.
 */
export function parseFlags(argv: readonly string[]): Map<string, string | undefined> {
  return new Map(
    argv.map((a): [string, string | undefined] => {
      const flag = a.replace(/^--/, "");
      const eq = flag.indexOf("=");
      return eq < 0 ? [flag, undefined] : [flag.slice(0, eq), flag.slice(eq + 1)];
    }),
  );
}
