/**
 * octomix: exact, fast Hugging Face BPE tokenization for Node.js, corpora to shards (tokenizeCorpus, the library face
 * of `octomix tokenize`), Megatron-LM token shards (writer and memory-mapped reader), staged mixture recipes, and
 * the streaming DataLoader (shuffled packed batches into host or device memory, resumable on every rank). This file
 * is the whole public surface.
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
  BatchReleasedError,
  DeviceUnavailableError,
  InputChangedError,
  LoaderError,
  OctomixError,
  RecipeError,
  ResumeStateError,
  ShardFormatError,
  ShardWriteError,
  TokenizeInterruptedError,
  TokenizerLoadError,
  TokenizeUsageError,
  UnsupportedTokenizerError,
} from './errors.js';
export { tokenizeCorpus } from './preprocess/tokenize-corpus.js';
export type { TokenizeCorpusOptions, TokenizeSummary } from './preprocess/tokenize-corpus.js';
export { DataLoader } from './loader/data-loader.js';
export type { DataLoaderOptions, LoaderState, LoaderProgress, LoaderPlanSummary } from './loader/data-loader.js';
export { Batch } from './loader/batch.js';
export type { BatchDevicePointers } from './loader/batch.js';
export { loadRecipe } from './mixture/recipe.js';
export type { Recipe, RecipeSource, RecipeStage, Mixture } from './mixture/recipe.js';
export { buildInfo } from './doctor.js';
export type { BuildInfo } from './doctor.js';
