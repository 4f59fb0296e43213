/**
 * The packing quality of a schedule: how close its sample order is to a shuffled sample of its sources (see
 * docs/loader.md, "Sample order"), computed natively (native/mixture/packing_quality.h) by replaying each stage's
 * first steps; `octomix plan` and its HTML report print these figures.
 */
import { fromNative } from '../errors.js';
import type { PreparedSchedule } from './schedule.js';
import type { RecipeSources } from './sources.js';

/** Steps of each stage the packing-quality figures cover by default (`octomix plan --quality-steps`). */
export const DEFAULT_QUALITY_STEPS = 2048;

/**
 * How close a stage's sample order is to a shuffled sample (see docs/loader.md, "Sample order"), over its first
 * `analysedSteps` global steps.
 */
export interface PackingQuality {
  name: string;
  steps: number;
  analysedSteps: number;
  rows: number;
  /** Neighbouring rows of a global batch (row i, i + 1 of one step) that start in the same document. */
  sameDocumentPairs: number;
  neighbourPairs: number;
  /** sameDocumentPairs / neighbourPairs. */
  sameDocumentNeighbours: number;
  /** The share a uniform shuffle of the same rows gives: sum of c(c - 1) / (N(N - 1)), c = rows starting in a document. */
  uniformNeighbours: number;
  sources: {
    source: string;
    /** Documents whose first token is in the analysed rows. */
    documentStarts: number;
    /** Spearman correlation between the row a document starts in and its length (0 is ideal). */
    startLengthCorrelation: number;
    /** Documents starting in the first 10% of the analysed rows, and their mean length. */
    earlyDocuments: number;
    earlyMeanLength: number;
    /** Mean length of the source's non-empty documents. */
    sourceMeanLength: number;
  }[];
}

/** Packing-quality figures of each stage of a schedule, computed natively from it and the sources' document lengths. */
export async function measurePackingQuality(prepared: PreparedSchedule, sources: RecipeSources, options: { steps?: number } = {}): Promise<PackingQuality[]> {
  const steps = options.steps ?? DEFAULT_QUALITY_STEPS;
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, received ${steps}`);
  let stages;
  try {
    stages = await prepared.schedule.measureQuality(sources.natives, steps);
  } catch (error) {
    throw fromNative(error);
  }
  return stages.map((stage, index) => ({
    name: prepared.stages[index].name, steps: prepared.stages[index].steps, analysedSteps: stage.steps, rows: stage.rows,
    sameDocumentPairs: stage.sameDocumentPairs, neighbourPairs: stage.neighbourPairs,
    sameDocumentNeighbours: stage.sameDocumentNeighbours, uniformNeighbours: stage.uniformNeighbours,
    sources: prepared.names.flatMap((source, i) => prepared.stages[index].shares[i] > 0 ? [{
      source, documentStarts: stage.sources[i].documentStarts, startLengthCorrelation: stage.sources[i].firstAppearanceLengthCorrelation,
      earlyDocuments: stage.sources[i].earlyDocuments, earlyMeanLength: stage.sources[i].earlyMeanLength, sourceMeanLength: stage.sources[i].sourceMeanLength,
    }] : []),
  }));
}

/** The packing-quality figures of one stage as lines of text (`octomix plan`, the HTML report). */
export function qualityLines(stage: PackingQuality): string[] {
  const percent = (value: number) => `${(value * 100).toFixed(3)}%`;
  const scope = stage.analysedSteps < stage.steps ? `first ${stage.analysedSteps.toLocaleString('en')} of ${stage.steps.toLocaleString('en')} steps` : `all ${stage.steps.toLocaleString('en')} steps`;
  return [
    `sample order (${scope}, ${stage.rows.toLocaleString('en')} rows): neighbouring rows starting in the same document ${percent(stage.sameDocumentNeighbours)} (a uniform shuffle: ${percent(stage.uniformNeighbours)})`,
    ...stage.sources.map((source) => `  ${source.source}: ${source.documentStarts.toLocaleString('en')} document starts, start-row/length rank correlation ${source.startLengthCorrelation.toFixed(3)}, ` +
      `mean length of those starting in the first 10% ${source.earlyMeanLength.toFixed(1)} vs ${source.sourceMeanLength.toFixed(1)} in the source (${source.sourceMeanLength > 0 ? (source.earlyMeanLength / source.sourceMeanLength).toFixed(3) : '-'}x)`),
  ];
}
