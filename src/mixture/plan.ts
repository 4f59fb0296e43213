/**
 * What a recipe asks of its shards, stage by stage: tokens requested per source, tokens available, epochs, and the
 * composition of the first global steps under the deterministic error-minimizing interleave (each next sample goes
 * to the source furthest below its share, ties to the first source; Megatron's BlendedDataset rule), so every
 * prefix of the stream stays within one sample of the target shares.
 */
import { TokenDataset } from '../shards/token-dataset.js';
import { RecipeError, stageMixture, type Recipe } from './recipe.js';

export interface SourcePlan {
  source: string;
  share: number;
  requestedTokens: number;
  availableTokens: number;
  /** requested / available for this stage. */
  epochs: number;
  /** Epochs of this source used up to the end of this stage (stages run in order on the same shards). */
  cumulativeEpochs: number;
}

export interface StagePlan {
  name: string;
  branch?: string;
  tokens: number;
  samples: number;
  steps: number;
  sources: SourcePlan[];
  /** Samples per source in each of the first steps. */
  firstSteps: Record<string, number>[];
}

/** Source index of each of the first `count` samples for the given shares (error-minimizing, deterministic). */
export function interleave(shares: number[], count: number): Uint16Array {
  const taken = new Float64Array(shares.length);
  const order = new Uint16Array(count);
  for (let sample = 0; sample < count; sample++) {
    let best = 0;
    let bestError = -Infinity;
    for (let source = 0; source < shares.length; source++) {
      const error = shares[source] * (sample + 1) - taken[source];
      if (error > bestError) {
        bestError = error;
        best = source;
      }
    }
    taken[best]++;
    order[sample] = best;
  }
  return order;
}

/**
 * Plans every stage of the recipe for a branch choice.
 * @throws {RecipeError} a stage needs more epochs of a source than its maxEpochs (says by how much), or a missing branch
 */
export function planRecipe(recipe: Recipe, branch?: string, options: { firstSteps?: number } = {}): StagePlan[] {
  const available = new Map<string, number>();
  for (const [name, source] of Object.entries(recipe.sources)) {
    try {
      available.set(name, TokenDataset.open(source.prefixes).numTokens);
    } catch (error) {
      throw new RecipeError(`sources.${name}.path`, (error as Error).message);
    }
  }
  const used = new Map<string, number>();
  const tokensPerStep = recipe.globalBatchSize * recipe.seqLength;
  return recipe.stages.map((stage, index) => {
    const mix = stageMixture(stage, index, branch);
    const names = Object.keys(mix);
    const sources = names.map((name) => {
      const requestedTokens = Math.round(stage.tokens * mix[name]);
      const availableTokens = available.get(name)!;
      if (availableTokens === 0) throw new RecipeError(`sources.${name}`, 'its shards hold no tokens');
      const epochs = requestedTokens / availableTokens;
      const maxEpochs = recipe.sources[name].maxEpochs;
      if (maxEpochs !== undefined && epochs > maxEpochs) {
        throw new RecipeError(`stages[${index}]${stage.branches ? `.branches.${branch}` : '.mix'}.${name}`,
          `needs ${epochs.toFixed(2)} epochs of ${name} (${requestedTokens.toLocaleString('en')} of ${availableTokens.toLocaleString('en')} tokens) but maxEpochs is ${maxEpochs}: ` +
          `${(epochs - maxEpochs).toFixed(2)} epochs (${Math.ceil(requestedTokens - maxEpochs * availableTokens).toLocaleString('en')} tokens) too many`);
      }
      used.set(name, (used.get(name) ?? 0) + requestedTokens);
      return { source: name, share: mix[name], requestedTokens, availableTokens, epochs, cumulativeEpochs: used.get(name)! / availableTokens };
    });
    // Whole global steps cover the budget (the loader's rule); samples are the sequences of those steps.
    const steps = Math.ceil(stage.tokens / tokensPerStep);
    const samples = steps * recipe.globalBatchSize;
    const shown = Math.min(options.firstSteps ?? 3, steps);
    const order = interleave(names.map((name) => mix[name]), Math.min(samples, shown * recipe.globalBatchSize));
    const firstSteps = Array.from({ length: shown }, (_, step) => {
      const counts: Record<string, number> = Object.fromEntries(names.map((name) => [name, 0]));
      for (let i = step * recipe.globalBatchSize; i < Math.min(order.length, (step + 1) * recipe.globalBatchSize); i++) counts[names[order[i]]]++;
      return counts;
    });
    return { name: stage.name, ...(stage.branches ? { branch } : {}), tokens: stage.tokens, samples, steps, sources, firstSteps };
  });
}
