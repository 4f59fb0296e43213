/**
 * octomix: exact, fast Hugging Face BPE tokenization for Node.js (and, in later modules, Megatron token shards and
 * staged mixture loading). This file is the whole public surface.
 */
export { Tokenizer } from './tokenizer/tokenizer.js';
export type {
  AddedTokenInfo,
  DecodeOptions,
  EncodeBatchOptions,
  EncodeOptions,
  SpecialTokens,
  TokenizerBackend,
  TokenizerLoadOptions,
} from './tokenizer/tokenizer.js';
export { ShardWriter, optimalDtype } from './shards/shard-writer.js';
export type { ShardDtype, ShardSummary, ShardWriterOptions } from './shards/shard-writer.js';
export { TokenDataset } from './shards/token-dataset.js';
export type { TokenArray } from './shards/token-dataset.js';
export {
  DeviceUnavailableError,
  OctomixError,
  ShardFormatError,
  ShardWriteError,
  TokenizerLoadError,
  UnsupportedTokenizerError,
} from './errors.js';
export { DataLoader, Batch, ResumeStateError, BatchReleasedError } from './mixture/data-loader.js';
export type { DataLoaderOptions, LoaderState, LoaderProgress, LoaderPlanSummary, BatchDevicePointers } from './mixture/data-loader.js';
export { loadRecipe, RecipeError } from './mixture/recipe.js';
export type { Recipe, RecipeSource, RecipeStage, Mixture } from './mixture/recipe.js';
export { buildInfo } from './doctor.js';
export type { BuildInfo } from './doctor.js';
