/**
 * Files embedded in the executable (BPF object, workload tools, libbpf) and
 * build facts. build.ts generates the module behind this; run `bun run build`
 * once before running from source.
 */
export { embedded, buildInfo } from "../build/gen/assets.ts";
