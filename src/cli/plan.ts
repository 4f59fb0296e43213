/** `octomix plan RECIPE [--branch B]`: per stage and source, what the recipe asks of the shards. */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { planReport } from '../mixture/plan-report.js';
import { exclusive, integerFlag, parseFlags, UsageError } from './flags.js';
import { formatCount } from '../io/progress.js';
import { DEFAULT_QUALITY_STEPS, measurePackingQuality, qualityLines, type PackingQuality } from '../mixture/packing-quality.js';
import { batchSplitProblem, loadRecipe } from '../mixture/recipe.js';
import { describeStages, prepareSchedule } from '../mixture/schedule.js';
import { RecipeSources } from '../mixture/sources.js';

const help = `usage: octomix plan RECIPE [--branch NAME] [--steps N] [--json] [--html FILE] [--cache-dir DIR] [--no-cache]
                    [--quality-steps N | --no-quality] [--world-size W --micro-batch-size M]

Prints, for each stage and source: tokens requested, tokens available in the shards, epochs (this stage and
cumulative), share, then what the DataLoader will deliver (real tokens, realised share, padding rate) and the
composition of the first global steps, from the loader's own plan (built, or read from the plan cache that
DataLoader.open shares), and the packing quality of the sample order: how often neighbouring rows of a global
batch start in the same document (beside what a uniform shuffle of the same rows gives), the rank correlation
between where documents start and their length, and the mean length of the documents starting in each stage's
first 10% against the source's mean (docs/loader.md, "Sample order"). Fails, naming the key, when a recipe is malformed, a shard is missing or corrupt, or a
stage needs more epochs of a source than its maxEpochs.

options:
  --branch NAME     the branch to use for stages that have alternatives (e.g. long, short, hybrid)
  --steps N         how many first steps to show per stage (default 3)
  --json            print the plan as JSON
  --html FILE       also write a self-contained page with a chart of tokens per source over the steps
  --cache-dir DIR   where loader plans are cached (default $OCTOMIX_CACHE_DIR, else ~/.cache/octomix/plans)
  --no-cache        build the loader plan without reading or writing the cache
  --quality-steps N measure the packing quality over each stage's first N steps (default 2048; the whole stage
                    when it is shorter)
  --no-quality      skip the packing-quality figures
  --world-size W    check that each global batch splits into W ranks (with --micro-batch-size, default the
                    recipe's, else 1), as DataLoader.open will; exit 1 naming the sizes that would when not
  --micro-batch-size M  sequences per micro-batch for that check`;

export async function runPlan(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    branch: { type: 'string' }, steps: { type: 'string' }, json: { type: 'boolean' }, html: { type: 'string' },
    'cache-dir': { type: 'string' }, 'no-cache': { type: 'boolean' }, 'quality-steps': { type: 'string' }, 'no-quality': { type: 'boolean' },
    'world-size': { type: 'string' }, 'micro-batch-size': { type: 'string' },
  }, { positionals: true });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('exactly one RECIPE is required');
  const steps = integerFlag('steps', values.steps, { min: 0, fallback: 3 });
  const qualitySteps = integerFlag('quality-steps', values['quality-steps'], { min: 1, fallback: DEFAULT_QUALITY_STEPS });
  exclusive(values, ['quality-steps', 'no-quality']);
  const sizes = { 'world-size': integerFlag('world-size', values['world-size'], { min: 1 }), 'micro-batch-size': integerFlag('micro-batch-size', values['micro-batch-size'], { min: 1 }) };
  const recipe = loadRecipe(positionals[0]);
  if (sizes['world-size'] !== undefined || sizes['micro-batch-size'] !== undefined) {
    const worldSize = sizes['world-size'] ?? 1;
    const microBatchSize = sizes['micro-batch-size'] ?? recipe.microBatchSize ?? 1;
    const problem = batchSplitProblem(recipe, worldSize, microBatchSize);
    if (problem) {
      console.error(`octomix plan: ${problem}`);
      return 1;
    }
    console.error(`octomix plan: each global batch of ${recipe.globalBatchSize} sequences splits into ${worldSize} rank(s) x ${recipe.globalBatchSize / (worldSize * microBatchSize)} micro-batch(es) of ${microBatchSize}`);
  }
  // The same path as DataLoader.open, stopping before the loader: shards opened once, budget and schedule from them.
  const sources = RecipeSources.open(recipe);
  const prepared = await prepareSchedule(recipe, sources, values.branch, { cache: !values['no-cache'], cacheDir: values['cache-dir'] });
  const plan = prepared.budget;
  console.error(`octomix plan: loader plan ${prepared.key} ${prepared.cached ? 'read from the cache' : 'built'} in ${(prepared.milliseconds / 1000).toFixed(2)} s`);
  // Delivered tokens, shares and the first steps as the loader will deliver them (from its own plan).
  const delivery = describeStages(recipe, prepared, { firstSteps: steps });
  let quality: PackingQuality[] | undefined;
  if (!values['no-quality']) {
    const begun = performance.now();
    quality = await measurePackingQuality(prepared, sources, { steps: qualitySteps });
    console.error(`octomix plan: packing quality measured over ${quality.reduce((sum, stage) => sum + stage.rows, 0).toLocaleString('en')} rows in ${((performance.now() - begun) / 1000).toFixed(2)} s`);
  }
  if (values.html) {
    const title = `octomix plan: ${basename(positionals[0])}${values.branch ? ` (branch ${values.branch})` : ''}`;
    await writeFile(values.html, planReport(recipe, plan, title, delivery, quality));
    console.error(`octomix plan: wrote ${values.html}`);
  }
  if (values.json) {
    console.log(JSON.stringify({ recipe: { seed: recipe.seed, seqLength: recipe.seqLength, globalBatchSize: recipe.globalBatchSize, packing: recipe.packing }, stages: plan, delivery, ...(quality ? { quality } : {}), planKey: prepared.key }, null, 2));
    return 0;
  }
  console.log(`seed ${recipe.seed}, seqLength ${recipe.seqLength}, global batch ${recipe.globalBatchSize} sequences (${formatCount(recipe.globalBatchSize * recipe.seqLength)} tokens), packing ${recipe.packing}`);
  for (const stage of plan) {
    console.log(`\nstage ${stage.name}${stage.branch ? ` (branch ${stage.branch})` : ''}: ${formatCount(stage.tokens)} tokens, ${stage.samples.toLocaleString('en')} sequences, ${stage.steps.toLocaleString('en')} steps`);
    console.log(`  ${'source'.padEnd(16)} ${'share'.padStart(7)} ${'requested'.padStart(10)} ${'available'.padStart(10)} ${'epochs'.padStart(7)} ${'cumulative'.padStart(10)} ${'delivered'.padStart(10)} ${'realised'.padStart(9)} ${'padding'.padStart(8)}`);
    const delivered = delivery.find((entry) => entry.name === stage.name)!;
    for (const source of stage.sources) {
      const real = delivered.sources.find((entry) => entry.source === source.source)!;
      console.log(`  ${source.source.padEnd(16)} ${(source.share * 100).toFixed(1).padStart(6)}% ${formatCount(source.requestedTokens).padStart(10)} ${formatCount(source.availableTokens).padStart(10)} ${source.epochs.toFixed(2).padStart(7)} ${source.cumulativeEpochs.toFixed(2).padStart(10)} ` +
        `${formatCount(real.tokens).padStart(10)} ${(real.realisedShare * 100).toFixed(2).padStart(8)}% ${(real.paddingRate * 100).toFixed(2).padStart(7)}%`);
    }
    delivered.firstSteps.forEach((counts, step) => {
      console.log(`  step ${step}: ${Object.entries(counts).map(([name, count]) => `${name} ${count}`).join(', ')}`);
    });
    const order = quality?.find((entry) => entry.name === stage.name);
    if (order) for (const line of qualityLines(order)) console.log(`  ${line}`);
  }
  return 0;
}
