/**
 * Where batches land: the `device` option of DataLoader.open resolved against what the addon's CUDA driver sees
 * (native/gpu: the driver is dlopen'ed at run time, so the same build runs with and without a GPU).
 */
import { describeValue, DeviceUnavailableError } from '../errors.js';
import { loadAddon } from '../native.js';

let warnedAutoDevice = false;

/** Resolves the `device` option: the CUDA ordinal to use, or -1 for host memory. */
export function deviceOrdinal(device: unknown): number {
  if (device === undefined || device === 'cpu') return -1;
  if (device === 'auto') {
    const info = loadAddon().buildInfo();
    if (info.gpuPath) return 0;
    if (!warnedAutoDevice) {
      warnedAutoDevice = true;
      process.emitWarning(`octomix: device 'auto' uses host memory: ${info.gpuPathReason ?? 'no usable CUDA device'}`);
    }
    return -1;
  }
  const match = typeof device === 'string' ? /^cuda:(\d+)$/.exec(device) : null;
  if (!match) throw new TypeError(`device must be 'cpu', 'auto' or 'cuda:N', received ${describeValue(device)}`);
  const info = loadAddon().buildInfo();
  if (!info.gpuPath) throw new DeviceUnavailableError(`device ${device}: the GPU path cannot run here: ${info.gpuPathReason ?? 'no usable CUDA device'}`);
  const ordinal = Number(match[1]);
  if (ordinal >= info.cudaDevices.length) throw new DeviceUnavailableError(`device ${device}: the driver sees ${info.cudaDevices.length} device(s) (${info.cudaDevices.map((d) => `cuda:${d.index} ${d.name}`).join(', ')})`);
  return ordinal;
}
