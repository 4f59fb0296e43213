/**
 * The token budget of a recipe, stage by stage: tokens requested per source, tokens available, and epochs, with the
 * maxEpochs check. What the loader will actually deliver (real tokens, shares, first steps) comes from the schedule
 * (schedule.ts).
 */
import { RecipeError } from '../errors.js';
import { stageMixture, type Recipe } from './recipe.js';
import type { RecipeSources } from './sources.js';

export interface SourceBudget {
  source: string;
  share: number;
  requestedTokens: number;
  availableTokens: number;
  /** requested / available for this stage. */
  epochs: number;
  /** Epochs of this source used up to the end of this stage (stages run in order on the same shards). */
  cumulativeEpochs: number;
}

export interface StageBudget {
  name: string;
  branch?: string;
  tokens: number;
  samples: number;
  steps: number;
  sources: SourceBudget[];
}

/** Global steps of a stage: whole global batches covering its token budget. */
export function stageSteps(recipe: Recipe, tokens: number): number {
  return Math.ceil(tokens / (recipe.globalBatchSize * recipe.seqLength));
}

/**
 * The budget of every stage of the recipe for a branch choice, over its opened sources.
 * @throws {RecipeError} a stage needs more epochs of a source than its maxEpochs (says by how much), or a missing branch
 */
export function tokenBudget(recipe: Recipe, sources: RecipeSources, branch?: string): StageBudget[] {
  const used = new Map<string, number>();
  return recipe.stages.map((stage, index) => {
    const mix = stageMixture(stage, index, branch);
    const budgets = Object.keys(mix).map((name) => {
      const requestedTokens = Math.round(stage.tokens * mix[name]);
      const availableTokens = sources.get(name).dataset.numTokens;
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
    const steps = stageSteps(recipe, stage.tokens);
    return { name: stage.name, ...(stage.branches ? { branch } : {}), tokens: stage.tokens, samples: steps * recipe.globalBatchSize, steps, sources: budgets };
  });
}
