/**
 * Progress for long runs: a single self-rewriting line on a terminal (documents, MB/s, tokens/s, ETA), plain lines
 * every `intervalMs` otherwise (logs of batch jobs), and nothing with `mode: 'none'`.
 */
export interface ProgressCounts {
  documents: number;
  tokens: number;
  bytes: number;
}

export class Progress {
  readonly #mode: 'tty' | 'lines' | 'none';
  readonly #totalBytes: number;
  readonly #started = performance.now();
  readonly #intervalMs: number;
  #last = 0;
  #stream: NodeJS.WriteStream;

  constructor(options: { mode: 'auto' | 'tty' | 'lines' | 'none'; totalBytes: number; intervalMs?: number; stream?: NodeJS.WriteStream }) {
    this.#stream = options.stream ?? process.stderr;
    this.#mode = options.mode === 'auto' ? (this.#stream.isTTY ? 'tty' : 'lines') : options.mode;
    this.#totalBytes = options.totalBytes;
    this.#intervalMs = options.intervalMs ?? (this.#mode === 'tty' ? 200 : 10_000);
  }

  update(counts: ProgressCounts, force = false): void {
    if (this.#mode === 'none') return;
    const now = performance.now();
    if (!force && now - this.#last < this.#intervalMs) return;
    this.#last = now;
    const line = this.#describe(counts, (now - this.#started) / 1000);
    if (this.#mode === 'tty') this.#stream.write(`\r\x1b[2K${line}`);
    else this.#stream.write(`${line}\n`);
  }

  done(): void {
    if (this.#mode === 'tty') this.#stream.write('\n');
  }

  #describe(counts: ProgressCounts, seconds: number): string {
    const rate = counts.bytes / 1e6 / Math.max(seconds, 1e-3);
    const tokensPerSecond = counts.tokens / Math.max(seconds, 1e-3);
    const share = this.#totalBytes > 0 ? Math.min(1, counts.bytes / this.#totalBytes) : 0;
    const eta = share > 0 && share < 1 ? ` ETA ${formatDuration(seconds * (1 / share - 1))}` : '';
    const bar = this.#mode === 'tty' && this.#totalBytes > 0
      ? `[${'#'.repeat(Math.round(share * 20)).padEnd(20, '.')}] ${(share * 100).toFixed(1)}% ` : '';
    return `${bar}${counts.documents.toLocaleString('en')} docs, ${formatCount(counts.tokens)} tokens, ` +
      `${rate.toFixed(1)} MB/s, ${formatCount(tokensPerSecond)} tokens/s${eta}`;
  }
}

export function formatCount(value: number): string {
  if (value >= 1e9) return `${(value / 1e9).toFixed(2)}B`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}K`;
  return String(Math.round(value));
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/** Parses `4M`, `200B`, `1.5G`, `65536` (K/M/G/B/T = 1e3/1e6/1e9/1e9/1e12; `Ki`/`Mi`/`Gi` = powers of 1024). */
export function parseSize(name: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(k|m|g|b|t|ki|mi|gi|ti)?$/i.exec(text.trim());
  if (!match) throw new RangeError(`${name} must be a number like 65536, 4M or 1Gi, received ${JSON.stringify(text)}`);
  const multipliers: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, b: 1e9, t: 1e12, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3, ti: 1024 ** 4 };
  const value = Number(match[1]) * (match[2] ? multipliers[match[2].toLowerCase()] : 1);
  if (!Number.isFinite(value) || value < 1) throw new RangeError(`${name} must be at least 1, received ${JSON.stringify(text)}`);
  return Math.floor(value);
}
