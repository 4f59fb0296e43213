/** `octomix plan RECIPE [--branch B]`: per stage and source, what the recipe asks of the shards. */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { planReport } from '../mixture/plan-report.js';
import { formatCount } from '../io/progress.js';
import { planRecipe } from '../mixture/plan.js';
import { loadRecipe } from '../mixture/recipe.js';

const help = `usage: octomix plan RECIPE [--branch NAME] [--steps N] [--json] [--html FILE]

Prints, for each stage and source: tokens requested, tokens available in the shards, epochs (this stage and
cumulative), share, and the composition of the first global steps. Fails, naming the key, when a recipe is
malformed or a stage needs more epochs of a source than its maxEpochs.

options:
  --branch NAME   the branch to use for stages that have alternatives (e.g. long, short, hybrid)
  --steps N       how many first steps to show per stage (default 3)
  --json          print the plan as JSON
  --html FILE     also write a self-contained page with a chart of tokens per source over the steps`;

export async function runPlan(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { branch: { type: 'string' }, steps: { type: 'string' }, json: { type: 'boolean' }, html: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(`octomix plan: exactly one RECIPE is required\n\n${help}`);
    return 2;
  }
  const steps = values.steps === undefined ? 3 : Number(values.steps);
  if (!Number.isInteger(steps) || steps < 0) {
    console.error(`octomix plan: --steps must be a non-negative integer, received "${values.steps}"`);
    return 2;
  }
  const recipe = loadRecipe(positionals[0]);
  const plan = planRecipe(recipe, values.branch, { firstSteps: steps });
  if (values.html) {
    const title = `octomix plan: ${basename(positionals[0])}${values.branch ? ` (branch ${values.branch})` : ''}`;
    await writeFile(values.html, planReport(recipe, plan, title));
    console.error(`octomix plan: wrote ${values.html}`);
  }
  if (values.json) {
    console.log(JSON.stringify({ recipe: { seed: recipe.seed, seqLength: recipe.seqLength, globalBatchSize: recipe.globalBatchSize, packing: recipe.packing }, stages: plan }, null, 2));
    return 0;
  }
  console.log(`seed ${recipe.seed}, seqLength ${recipe.seqLength}, global batch ${recipe.globalBatchSize} sequences (${formatCount(recipe.globalBatchSize * recipe.seqLength)} tokens), packing ${recipe.packing}`);
  for (const stage of plan) {
    console.log(`\nstage ${stage.name}${stage.branch ? ` (branch ${stage.branch})` : ''}: ${formatCount(stage.tokens)} tokens, ${stage.samples.toLocaleString('en')} sequences, ${stage.steps.toLocaleString('en')} steps`);
    console.log(`  ${'source'.padEnd(16)} ${'share'.padStart(7)} ${'requested'.padStart(10)} ${'available'.padStart(10)} ${'epochs'.padStart(7)} ${'cumulative'.padStart(10)}`);
    for (const source of stage.sources) {
      console.log(`  ${source.source.padEnd(16)} ${(source.share * 100).toFixed(1).padStart(6)}% ${formatCount(source.requestedTokens).padStart(10)} ${formatCount(source.availableTokens).padStart(10)} ${source.epochs.toFixed(2).padStart(7)} ${source.cumulativeEpochs.toFixed(2).padStart(10)}`);
    }
    stage.firstSteps.forEach((counts, step) => {
      console.log(`  step ${step}: ${Object.entries(counts).map(([name, count]) => `${name} ${count}`).join(', ')}`);
    });
  }
  return 0;
}
