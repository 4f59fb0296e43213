/**
 * Loads the compiled addon. The path is build/Release/octomix.node at the package root (one level above both src/
 * and dist/); OCTOMIX_ADDON_PATH overrides it, which is how the sanitizer test run points at build-sanitize/.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddedTokenInfo } from './tokenizer/tokenizer.js';

/** Per line of a JSON Lines chunk: status 0 ok, 1 blank, 2 malformed JSON, 3 missing field, 4 non-string field. */
export interface NativeJsonLines {
  ids: Uint32Array[];
  status: Int32Array;
  invalidUtf8: Uint8Array;
  lineBytes: Float64Array;
  messages: (string | undefined)[];
}

export interface NativeTokenizerInfo {
  vocabSize: number;
  addedTokens: AddedTokenInfo[];
  templatePrefix: number[];
  templateSuffix: number[];
  warnings: string[];
  memoryBytes: number;
}

export interface NativeTokenizer {
  encode(text: string | Uint8Array, addSpecialTokens: boolean): Uint32Array;
  encodeBatch(texts: (string | Uint8Array)[], addSpecialTokens: boolean, threads: number): Promise<Uint32Array[]>;
  decode(ids: Uint32Array, skipSpecialTokens: boolean): string;
  encodeJsonLines(bytes: Uint8Array, field: string[], addSpecialTokens: boolean, threads: number): Promise<NativeJsonLines>;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  info(): NativeTokenizerInfo;
}

export interface NativeBuildInfo {
  version: string;
  compiler: string;
  flags: string;
  buildType: string;
  napiVersion: number;
  sanitizers: string;
  threads: number;
  cudaDriver: boolean;
  cudaDriverLibrary: string;
  cudaStandinStatus?: string;
  cudaDriverVersion?: number;
  cudaDriverError?: string;
  gpuPath: boolean;
  gpuPathReason?: string;
  cudaDevices: { index: number; name: string; memoryBytes: number }[];
}

export interface NativeShardStats {
  sequences: number;
  documents: number;
  tokens: number;
  binBytes: number;
}

export interface NativeShardWriter {
  addDocument(ids: Uint32Array): void;
  finish(): NativeShardStats & { digest: string };
  abort(): void;
}

export interface NativeTokenDataset {
  info(): { dtype: string; sequences: number; documents: number; tokens: number };
  document(index: number): Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array;
  lengths(): Int32Array;
  documentIndices(): Float64Array;
}

export interface NativeGptIndices {
  epochs: number;
  separateFinalEpoch: boolean;
  documentIndex: Int32Array;
  /** (position in documentIndex, token offset) pairs, one more row than samples. */
  sampleIndex: Float64Array;
  shuffleIndex: Float64Array;
}

export interface NativeAddon {
  buildGptIndices(lengths: Int32Array, seqLength: number, numSamples: number, seed: number): NativeGptIndices;
  ShardWriter: new (prefix: string, dtypeCode: number) => NativeShardWriter;
  TokenDataset: new (prefix: string) => NativeTokenDataset;
  Tokenizer: {
    new (json: string | Uint8Array): NativeTokenizer;
    /** Parses and builds on a native pool thread. */
    load(json: string | Uint8Array): Promise<NativeTokenizer>;
  };
  buildInfo(): NativeBuildInfo;
}

export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

let addon: NativeAddon | undefined;

/** The addon, loaded on first use; throws an Error that says how to build it when it is missing. */
export function loadAddon(): NativeAddon {
  if (addon) return addon;
  const override = process.env.OCTOMIX_ADDON_PATH;
  const path = override ? resolve(override) : join(packageRoot, 'build', 'Release', 'octomix.node');
  if (!existsSync(path)) {
    throw new Error(
      `octomix: the native addon is not built (looked for ${path}). Run "npm rebuild octomix" ` +
        '(or "npm run build:native" in a checkout); it needs cmake and a C++17 compiler.',
    );
  }
  const require = createRequire(import.meta.url);
  addon = require(path) as NativeAddon;
  return addon;
}
