/** `octomix doctor`: prints the addon's build, the CPU and threads, and whether a CUDA driver is present. */
import { parseFlags } from './flags.js';
import { buildInfo } from '../doctor.js';

export async function runDoctor(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { json: { type: 'boolean' } });
  if (values.help) {
    console.log('usage: octomix doctor [--json]\n\n  --json  print the report as JSON');
    return 0;
  }
  const info = buildInfo();
  if (values.json) {
    console.log(JSON.stringify(info, null, 2));
    return 0;
  }
  const cuda = info.cudaDriver
    ? `present (${info.cudaDriverLibrary}${info.cudaDriverLibrary !== 'libcuda.so.1' ? ', chosen by OCTOMIX_CUDA_DRIVER' : ''}; driver CUDA ${Math.floor((info.cudaDriverVersion ?? 0) / 1000)}.${((info.cudaDriverVersion ?? 0) % 1000) / 10})`
    : `absent (${info.cudaDriverError ?? `${info.cudaDriverLibrary} not found`}); the GPU path is inactive, host memory is used`;
  console.log(
    [
      `octomix ${info.version}`,
      `  addon:    ${info.buildType}, ${info.compiler}, flags ${info.flags}, sanitizers ${info.sanitizers}, N-API ${info.napiVersion}`,
      `  node:     ${info.nodeVersion}`,
      `  cpu:      ${info.cpuModel} x ${info.cpuCount}`,
      `  threads:  ${info.threads} (native pool default)`,
      `  cuda:     ${cuda}`,
      ...info.cudaDevices.map((device) => `  cuda:${device.index}:   ${device.name}, ${(device.memoryBytes / 2 ** 30).toFixed(1)} GiB`),
      `  gpu path: ${info.gpuPath ? 'active (DataLoader device cuda:N pins its ring and copies batches to the device)' : `inactive: ${info.gpuPathReason ?? 'unknown'}; batches stay in host memory`}`,
    ].join('\n'),
  );
  return 0;
}
