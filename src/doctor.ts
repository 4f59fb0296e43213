/** What `octomix doctor` reports: how the addon was built, the CPU and thread count, and the CUDA driver's state. */
import { availableParallelism, cpus } from 'node:os';
import { loadAddon } from './native.js';

export interface BuildInfo {
  /** octomix version compiled into the addon. */
  version: string;
  /** Compiler id and version, e.g. `GNU 12.2.0`. */
  compiler: string;
  /** Optimisation and sanitizer flags of the build. */
  flags: string;
  buildType: string;
  /** `address,undefined` for the sanitizer build, else `none`. */
  sanitizers: string;
  napiVersion: number;
  nodeVersion: string;
  cpuModel: string;
  /** CPUs this process may run on. */
  cpuCount: number;
  /** Threads octomix's native pool uses by default (the CPUs in this process's affinity mask). */
  threads: number;
  /** Whether the CUDA driver library could be loaded; the GPU path reaches CUDA only through it. */
  cudaDriver: boolean;
  /** The driver library octomix loads: libcuda.so.1, or the one OCTOMIX_CUDA_DRIVER names (tests use a stand-in). */
  cudaDriverLibrary: string;
  /** The driver's CUDA version as an integer (e.g. 12040 = 12.4), when loaded. */
  cudaDriverVersion?: number;
  /** Why the driver could not be loaded. */
  cudaDriverError?: string;
  /** Whether the GPU path can run: the driver loads, cuInit succeeds and a device is present. */
  gpuPath: boolean;
  /** Why the GPU path cannot run, when it cannot. */
  gpuPathReason?: string;
  /** The CUDA devices the driver sees. */
  cudaDevices: { index: number; name: string; memoryBytes: number }[];
}

/** Describes the loaded native addon and the machine, as `octomix doctor` prints it. */
export function buildInfo(): BuildInfo {
  const native = loadAddon().buildInfo();
  return {
    version: native.version,
    compiler: native.compiler,
    flags: native.flags,
    buildType: native.buildType,
    sanitizers: native.sanitizers,
    napiVersion: native.napiVersion,
    nodeVersion: process.version,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpuCount: availableParallelism(),
    threads: native.threads,
    cudaDriver: native.cudaDriver,
    cudaDriverLibrary: native.cudaDriverLibrary,
    ...(native.cudaDriverVersion !== undefined ? { cudaDriverVersion: native.cudaDriverVersion } : {}),
    ...(native.cudaDriverError !== undefined ? { cudaDriverError: native.cudaDriverError } : {}),
    gpuPath: native.gpuPath,
    ...(native.gpuPathReason !== undefined ? { gpuPathReason: native.gpuPathReason } : {}),
    cudaDevices: native.cudaDevices,
  };
}

/**
 * @internal With the tests' CUDA stand-in loaded (OCTOMIX_CUDA_DRIVER): its report of live allocations, host
 * registrations, streams, events, retained contexts and IPC mappings, and every violation of the driver's contract
 * it saw. Undefined with a real driver.
 */
export function cudaStandinStatus(): { allocations: number; registrations: number; streams: number; events: number; retainedContexts: number; ipcMappings: number; violations: string[] } | undefined {
  const report = loadAddon().buildInfo().cudaStandinStatus;
  return report === undefined ? undefined : JSON.parse(report);
}
