/**
 * What a recipe asks of its shards, stage by stage: tokens requested per source, tokens available, and epochs, with
 * the maxEpochs check. What the loader will actually deliver (real tokens, shares, first steps) comes from its plan
 * (loader-plan.ts).
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
}

/**
 * Plans every stage of the recipe for a branch choice.
 * @throws {RecipeError} a stage needs more epochs of a source than its maxEpochs (says by how much), or a missing branch
 */
export function planRecipe(recipe: Recipe, branch?: string): StagePlan[] {
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
    return { name: stage.name, ...(stage.branches ? { branch } : {}), tokens: stage.tokens, samples, steps, sources };
  });
}
