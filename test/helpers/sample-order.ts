/**
 * Sample-order figures computed from delivered batches alone (independent of the native packing-quality report,
 * which the tests compare with these): per stage, the share of neighbouring rows of a global batch that start in
 * the same document against what a uniform shuffle of the same rows gives, and per source the Spearman correlation
 * between where a document starts (or first appears) and its length, and the mean length of the documents that
 * start (or first appear) in the first 10% of the stage against the source's mean.
 */
import type { Batch, DataLoader } from '../../src/index.js';

export interface RowRecord {
  step: number;
  source: string;
  /** Document of the row's first token. */
  start: number;
  /** Every (document, starts here) segment of the row, in order. */
  segments: { document: number; starts: boolean }[];
}

export interface SourceOrder {
  documents: number;
  correlation: number;
  earlyDocuments: number;
  earlyMeanLength: number;
  sourceMeanLength: number;
}

export interface StageOrder {
  rows: number;
  neighbourPairs: number;
  sameDocumentPairs: number;
  sameDocumentNeighbours: number;
  uniformNeighbours: number;
  /** By document starts (offset 0), the definition the native report uses. */
  starts: Record<string, SourceOrder>;
  /** By first appearance of any chunk in the stage. */
  firstSeen: Record<string, SourceOrder>;
}

/**
 * Rows of every batch, in delivery order, grouped by stage. `startsAt(token)` says whether an input token is the
 * first of its document (the tests encode positions in the token ids).
 */
export async function collectRows(loader: DataLoader, startsAt: (token: number) => boolean): Promise<Map<string, RowRecord[]>> {
  const stages = new Map<string, RowRecord[]>();
  const seqLength = loader.seqLength;
  for await (const batch of loader) {
    addBatch(batch, seqLength, startsAt, stages);
    batch.release();
  }
  await loader.close();
  return stages;
}

function addBatch(batch: Batch, seqLength: number, startsAt: (token: number) => boolean, stages: Map<string, RowRecord[]>): void {
  const rows: RowRecord[] = [];
  for (let row = 0; row < batch.microBatchSize; row++) rows.push({ step: batch.step, source: batch.sources[row], start: -1, segments: [] });
  const { cuSeqlens, documentIds, inputIds } = batch;
  for (let segment = 0; segment < documentIds.length; segment++) {
    const from = cuSeqlens[segment];
    const record = rows[Math.floor(from / seqLength)];
    if (documentIds[segment] < 0) continue;  // padding
    if (from % seqLength === 0) record.start = documentIds[segment];
    record.segments.push({ document: documentIds[segment], starts: startsAt(inputIds[from]) });
  }
  const list = stages.get(batch.stage) ?? [];
  list.push(...rows);
  stages.set(batch.stage, list);
}

function ranks(values: number[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const out = new Array<number>(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) j++;
    for (let k = i; k <= j; k++) out[order[k]] = (i + j) / 2;
    i = j + 1;
  }
  return out;
}

export function spearman(x: number[], y: number[]): number {
  const rx = ranks(x);
  const ry = ranks(y);
  const n = x.length;
  const mx = rx.reduce((a, b) => a + b, 0) / n;
  const my = ry.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

/** The figures of one stage's rows; `lengths[source][document]` are the shards' document lengths. */
export function stageOrder(rows: RowRecord[], lengths: Record<string, ArrayLike<number>>): StageOrder {
  let neighbourPairs = 0;
  let sameDocumentPairs = 0;
  const startCounts = new Map<string, number>();
  for (let i = 0; i < rows.length; i++) {
    const key = `${rows[i].source}/${rows[i].start}`;
    if (rows[i].start >= 0) startCounts.set(key, (startCounts.get(key) ?? 0) + 1);
    if (i > 0 && rows[i - 1].step === rows[i].step) {
      neighbourPairs++;
      if (rows[i].start >= 0 && rows[i - 1].source === rows[i].source && rows[i - 1].start === rows[i].start) sameDocumentPairs++;
    }
  }
  const n = rows.length;
  let pairs = 0;
  for (const c of startCounts.values()) pairs += c * (c - 1);
  const early = Math.ceil(n / 10);
  const figures = (useStarts: boolean): Record<string, SourceOrder> => {
    const bySource: Record<string, { row: number[]; length: number[]; early: number[] }> = {};
    const seen = new Set<string>();
    rows.forEach((record, row) => {
      for (const segment of record.segments) {
        if (useStarts ? !segment.starts : seen.has(`${record.source}/${segment.document}`)) continue;
        seen.add(`${record.source}/${segment.document}`);
        const entry = (bySource[record.source] ??= { row: [], length: [], early: [] });
        const length = lengths[record.source][segment.document];
        entry.row.push(row);
        entry.length.push(length);
        if (row < early) entry.early.push(length);
      }
    });
    return Object.fromEntries(Object.entries(bySource).map(([source, entry]) => {
      const all = Array.from(lengths[source]).filter((length) => length > 0);
      return [source, {
        documents: entry.row.length,
        correlation: spearman(entry.row, entry.length),
        earlyDocuments: entry.early.length,
        earlyMeanLength: entry.early.reduce((a, b) => a + b, 0) / Math.max(1, entry.early.length),
        sourceMeanLength: all.reduce((a, b) => a + b, 0) / all.length,
      }];
    }));
  };
  return {
    rows: n, neighbourPairs, sameDocumentPairs,
    sameDocumentNeighbours: neighbourPairs ? sameDocumentPairs / neighbourPairs : 0,
    uniformNeighbours: n > 1 ? pairs / (n * (n - 1)) : 0,
    starts: figures(true), firstSeen: figures(false),
  };
}
