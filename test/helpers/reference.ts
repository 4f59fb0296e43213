/**
 * The tests' own addon (test/reference, built beside the product's addon as build/Release/octomix_reference.node):
 * Megatron's GPTDataset indices with numpy's RandomState reproduced, the reference the concat tests compare the
 * loader with. It is not part of the product. Under the sanitizer run it is loaded from the sanitizer build folder.
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { packageRoot } from '../../src/native.js';

export interface GptIndices {
  epochs: number;
  separateFinalEpoch: boolean;
  documentIndex: Int32Array;
  /** (position in documentIndex, token offset) pairs, one more row than samples. */
  sampleIndex: Float64Array;
  shuffleIndex: Float64Array;
}

interface ReferenceAddon {
  buildGptIndices(lengths: Int32Array, seqLength: number, numSamples: number, seed: number): GptIndices;
}

let reference: ReferenceAddon | undefined;

export function referenceAddon(): ReferenceAddon {
  if (reference) return reference;
  const folder = process.env.OCTOMIX_ADDON_PATH ? dirname(resolve(process.env.OCTOMIX_ADDON_PATH)) : join(packageRoot, 'build', 'Release');
  reference = createRequire(import.meta.url)(join(folder, 'octomix_reference.node')) as ReferenceAddon;
  return reference;
}
