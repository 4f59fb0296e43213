/**
 * `octomix plan --html`: one self-contained page (inline SVG, no scripts, no external files) with a stacked chart
 * of cumulative tokens per source over training steps, the stage boundaries, and the per-stage tables.
 */
import type { Recipe } from './recipe.js';
import type { StageBudget } from './budget.js';
import { qualityLines, type PackingQuality } from './packing-quality.js';
import type { StageDelivery } from './schedule.js';
import { formatCount } from '../io/progress.js';

const palette = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!);
}

export function planReport(recipe: Recipe, plan: StageBudget[], title: string, delivery?: StageDelivery[], quality?: PackingQuality[]): string {
  const sources = [...new Set(plan.flatMap((stage) => stage.sources.map((source) => source.source)))];
  // Cumulative tokens per source at each stage boundary (mixtures are constant inside a stage, so lines are straight).
  const boundaries: { step: number; cumulative: number[] }[] = [{ step: 0, cumulative: sources.map(() => 0) }];
  for (const stage of plan) {
    const previous = boundaries[boundaries.length - 1];
    const cumulative = sources.map((name, i) => previous.cumulative[i] + (stage.sources.find((s) => s.source === name)?.requestedTokens ?? 0));
    boundaries.push({ step: previous.step + stage.steps, cumulative });
  }
  const width = 900, height = 360, left = 70, right = 20, top = 20, bottom = 40;
  const totalSteps = Math.max(1, boundaries[boundaries.length - 1].step);
  const totalTokens = Math.max(1, boundaries[boundaries.length - 1].cumulative.reduce((a, b) => a + b, 0));
  const x = (step: number) => left + ((width - left - right) * step) / totalSteps;
  const y = (tokens: number) => height - bottom - ((height - top - bottom) * tokens) / totalTokens;
  const stacked = (index: number, point: { cumulative: number[] }) => point.cumulative.slice(0, index + 1).reduce((a, b) => a + b, 0);
  const areas = sources.map((name, index) => {
    const upper = boundaries.map((point) => `${x(point.step).toFixed(1)},${y(stacked(index, point)).toFixed(1)}`);
    const lower = boundaries.map((point) => `${x(point.step).toFixed(1)},${y(index === 0 ? 0 : stacked(index - 1, point)).toFixed(1)}`).reverse();
    return `<polygon points="${[...upper, ...lower].join(' ')}" fill="${palette[index % palette.length]}" fill-opacity="0.85"><title>${escapeHtml(name)}</title></polygon>`;
  });
  const stageLines = boundaries.slice(1, -1).map((point, index) =>
    `<line x1="${x(point.step)}" x2="${x(point.step)}" y1="${top}" y2="${height - bottom}" stroke="#333" stroke-dasharray="4 3"/>` +
    `<text x="${x(point.step) + 4}" y="${top + 12}" font-size="12">${escapeHtml(plan[index + 1].name)}</text>`);
  const legend = sources.map((name, index) =>
    `<span style="display:inline-block;margin-right:16px"><span style="display:inline-block;width:12px;height:12px;background:${palette[index % palette.length]};margin-right:4px"></span>${escapeHtml(name)}</span>`).join('');
  const tables = plan.map((stage) => {
    const delivered = delivery?.find((entry) => entry.name === stage.name);
    return `
<h2>${escapeHtml(stage.name)}${stage.branch ? ` <small>(branch ${escapeHtml(stage.branch)})</small>` : ''}</h2>
<p>${formatCount(stage.tokens)} tokens, ${stage.samples.toLocaleString('en')} sequences, ${stage.steps.toLocaleString('en')} steps</p>
<table><tr><th>source</th><th>share</th><th>requested</th><th>available</th><th>epochs</th><th>cumulative epochs</th>${delivery ? '<th>delivered</th><th>realised share</th><th>padding</th>' : ''}</tr>
${stage.sources.map((s) => {
    const real = delivered?.sources.find((entry) => entry.source === s.source);
    const extra = real ? `<td>${formatCount(real.tokens)}</td><td>${(real.realisedShare * 100).toFixed(2)}%</td><td>${(real.paddingRate * 100).toFixed(2)}%</td>` : '';
    return `<tr><td>${escapeHtml(s.source)}</td><td>${(s.share * 100).toFixed(1)}%</td><td>${formatCount(s.requestedTokens)}</td><td>${formatCount(s.availableTokens)}</td><td>${s.epochs.toFixed(2)}</td><td>${s.cumulativeEpochs.toFixed(2)}</td>${extra}</tr>`;
  }).join('\n')}
</table>
${(() => { const order = quality?.find((entry) => entry.name === stage.name); return order ? `<p class="quality">${qualityLines(order).map(escapeHtml).join('<br>')}</p>` : ''; })()}
${delivered?.firstSteps.length ? `<p>First steps: ${delivered.firstSteps.map((counts, step) => `step ${step}: ${Object.entries(counts).map(([name, count]) => `${escapeHtml(name)} ${count}`).join(', ')}`).join('; ')}</p>` : ''}`;
  }).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>seed ${recipe.seed}, sequence length ${recipe.seqLength}, global batch ${recipe.globalBatchSize} sequences (${formatCount(recipe.globalBatchSize * recipe.seqLength)} tokens), packing ${recipe.packing}</p>
<svg width="${width}" height="${height}" role="img" aria-label="cumulative tokens per source over training steps">
<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>
${areas.join('\n')}
${stageLines.join('\n')}
<line x1="${left}" x2="${width - right}" y1="${height - bottom}" y2="${height - bottom}" stroke="#333"/>
<line x1="${left}" x2="${left}" y1="${top}" y2="${height - bottom}" stroke="#333"/>
<text x="${left}" y="${height - 12}" font-size="12">step 0</text>
<text x="${width - right}" y="${height - 12}" font-size="12" text-anchor="end">step ${totalSteps.toLocaleString('en')}</text>
<text x="${left - 6}" y="${top + 10}" font-size="12" text-anchor="end">${formatCount(totalTokens)}</text>
<text x="${left - 6}" y="${height - bottom}" font-size="12" text-anchor="end">0</text>
</svg>
<div>${legend}</div>
<p>Cumulative tokens per source over training steps; dashed lines are stage boundaries.</p>
${tables}
</body></html>
`;
}
