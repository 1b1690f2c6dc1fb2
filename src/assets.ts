/**
 * Files embedded in the executable (BPF object, workload tools, libbpf) and
 * build facts. build.ts generates the module behind this; run `bun run build`
 * once before running from source.
 */
import * as generated from "../out/gen/assets.ts";

export interface Embedded {
  /** Paths readable with node:fs: on disk from source, in $bunfs when compiled. */
  bpfObject: string;
  storm: string;
  noop: string;
  flood: string;
  /** null in a --system-libbpf build. */
  libbpfSo: string | null;
}

export interface BuildInfo {
  version: string;
  commit: string;
  /** libbpf version embedded, or "system". */
  libbpf: string;
  arch: string;
}

export const embedded: Embedded = generated.embedded;
export const buildInfo: BuildInfo = generated.buildInfo;
