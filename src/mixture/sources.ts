/**
 * The opened sources of a recipe: each source's shards opened once, as one TokenDataset over one native handle,
 * checked against their manifests, with the fingerprints of their document lengths computed natively. This is the
 * one place a recipe's shards are opened: the token budget, the schedule (built or read from the cache) and the
 * DataLoader all take this object and pass its native datasets on by handle.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { RecipeError, ShardFormatError } from '../errors.js';
import type { NativeTokenDataset } from '../native.js';
import { TokenDataset } from '../shards/token-dataset.js';
import { lossMaskPrefix, sameDocumentLengths } from '../shards/verify.js';
import type { Recipe } from './recipe.js';

export interface OpenedSource {
  name: string;
  dataset: TokenDataset;
  /** The loss mask beside the source's shards (PREFIX.mask, written by `octomix tokenize --train-on`), if they have one. */
  lossMask?: TokenDataset;
  /** sha256 prefix over the source's per-shard length fingerprints: what a resume state names the source by. */
  fingerprint: string;
}

function readManifest(prefix: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(`${prefix}.json`, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;  // shards written by Megatron's tools have none
  }
}

function manifestId(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'number') return (value as { id: number }).id;
  return undefined;
}

/**
 * The loss mask of a source: PREFIX.mask beside every shard, opened as one dataset, or none when no shard has one.
 * Some shards with a mask and some without is an error (a source is trained one way), as is a mask whose documents
 * are not the shard's.
 */
function openLossMask(name: string, dataset: TokenDataset): TokenDataset | undefined {
  const prefixes = dataset.shards.map((shard) => shard.prefix);
  const masked = prefixes.filter((prefix) => existsSync(`${lossMaskPrefix(prefix)}.idx`));
  if (masked.length === 0) return undefined;
  if (masked.length < prefixes.length) {
    const missing = prefixes.find((prefix) => !masked.includes(prefix))!;
    throw new RecipeError(`sources.${name}.path`, `${masked.length} of its ${prefixes.length} shards have a loss mask (PREFIX.mask.bin/.idx) and ${missing} has none; tokenize them all with the same --train-on, or none`);
  }
  let mask: TokenDataset;
  try {
    mask = TokenDataset.openSource(prefixes.map(lossMaskPrefix), `${name} loss mask`);
  } catch (error) {
    throw new RecipeError(`sources.${name}.path`, `its loss mask: ${(error as Error).message}`);
  }
  if (mask.dtype !== 'uint8') throw new RecipeError(`sources.${name}.path`, `its loss mask is ${mask.dtype}, not uint8`);
  if (!sameDocumentLengths(mask, dataset)) {
    throw new RecipeError(`sources.${name}.path`, 'its loss mask\'s documents are not the shards\' (other lengths): it belongs to another tokenization');
  }
  // A shard written with its mask records the mask's digest: a mask copied from another run of the same lengths.
  for (const prefix of prefixes) {
    const recorded = (readManifest(prefix)?.lossMask as { digest?: unknown } | undefined)?.digest;
    const own = (readManifest(lossMaskPrefix(prefix))?.digest as { value?: unknown } | undefined)?.value;
    if (recorded !== undefined && own !== undefined && recorded !== own) {
      throw new RecipeError(`sources.${name}.path`, `${lossMaskPrefix(prefix)} is not the mask ${prefix} was written with (its manifest's digest differs from the one the shard's manifest records)`);
    }
  }
  return mask;
}

export class RecipeSources {
  /** Source names, in recipe order (batch.sourceIds index this). */
  readonly names: readonly string[];
  readonly sources: readonly OpenedSource[];
  /** The EOS id the shards' manifests record (the first that records one), for maskEosInput. */
  readonly eosFromManifest: number | undefined;

  private constructor(sources: OpenedSource[], eosFromManifest: number | undefined) {
    this.sources = Object.freeze(sources);
    this.names = Object.freeze(sources.map((source) => source.name));
    this.eosFromManifest = eosFromManifest;
  }

  /**
   * Opens and validates every shard of every source of the recipe, once.
   * @throws {RecipeError} a shard that is missing or corrupt, keyed `sources.NAME.path`, with the file and problem
   * @throws {ShardFormatError} a shard whose counts differ from its manifest (it changed since it was written)
   */
  static open(recipe: Recipe): RecipeSources {
    let eosFromManifest: number | undefined;
    const sources = Object.entries(recipe.sources).map(([name, source]): OpenedSource => {
      let dataset: TokenDataset;
      try {
        dataset = TokenDataset.openSource(source.prefixes, name);
      } catch (error) {
        throw new RecipeError(`sources.${name}.path`, (error as Error).message);
      }
      if (dataset.numTokens === 0) throw new RecipeError(`sources.${name}`, 'its shards hold no tokens');
      dataset.shards.forEach((shard) => {
        const manifest = readManifest(shard.prefix);
        if (manifest && (manifest.tokens !== shard.tokens || manifest.sequences !== shard.documents)) {
          throw new ShardFormatError(shard.prefix, `source ${name}: ${shard.prefix} changed since it was written: its manifest records ${manifest.sequences} sequences and ${manifest.tokens} tokens, the shard holds ${shard.documents} and ${shard.tokens}`);
        }
        eosFromManifest ??= manifestId(manifest?.eos);
      });
      const lossMask = openLossMask(name, dataset);
      // A source that gained or lost its mask gives other batches (lossMask, labels): a resume state must notice.
      const fingerprint = createHash('sha256').update(dataset.fingerprints.join(',') + (lossMask ? ',loss-mask' : '')).digest('hex').slice(0, 16);
      return { name, dataset, fingerprint, ...(lossMask ? { lossMask } : {}) };
    });
    return new RecipeSources(sources, eosFromManifest);
  }

  /** The native datasets in recipe order: the handles the schedule and the loader take. */
  get natives(): NativeTokenDataset[] {
    return this.sources.map((source) => source.dataset.native);
  }

  /** Per source, in recipe order, its loss mask's native dataset or null: what the loader applies to lossMask. */
  get maskNatives(): (NativeTokenDataset | null)[] {
    return this.sources.map((source) => source.lossMask?.native ?? null);
  }

  /** Fingerprint of each source by name (LoaderState.sources). */
  get fingerprints(): Record<string, string> {
    return Object.fromEntries(this.sources.map((source) => [source.name, source.fingerprint]));
  }

  get(name: string): OpenedSource {
    const source = this.sources.find((candidate) => candidate.name === name);
    if (!source) throw new RangeError(`no source ${JSON.stringify(name)} in this recipe (${this.names.join(', ')})`);
    return source;
  }
}
