/**
 * The peers octomix is measured against, built from the same tokenizer.json: Hugging Face `tokenizers` (Rust via
 * napi-rs), `tiktoken` (Rust compiled to WASM, given the same vocabulary as ranks and the same split regex) and
 * `@huggingface/tokenizers` (pure JS).
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import { Tiktoken } from 'tiktoken';

const require = createRequire(import.meta.url);

export interface HfNative {
  encode(text: string, pair?: string | null, options?: { addSpecialTokens?: boolean }): Promise<{ getIds(): number[] }>;
  encodeBatch(texts: string[], options?: { addSpecialTokens?: boolean }): Promise<{ getIds(): number[] }[]>;
}
export const hfNative = require('tokenizers') as { Tokenizer: { fromFile(path: string): HfNative } };

export function version(name: string): string {
  // Some packages do not export package.json; read it from node_modules.
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    const path = require.resolve.paths(name)!.map((dir) => `${dir}/${name}/package.json`).find((p) => {
      try { readFileSync(p); return true; } catch { return false; }
    });
    return path ? (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version : 'unknown';
  }
}

/** GPT-2 byte alphabet → byte, to turn byte-level vocabulary keys into the raw bytes tiktoken ranks. */
function byteDecoder(): Map<string, number> {
  const map = new Map<string, number>();
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    map.set(String.fromCodePoint(printable ? byte : next++), byte);
  }
  return map;
}

/** tiktoken over the tokenizer.json's vocabulary (id = rank) and its Split regex. */
export function tiktokenFrom(path: string): Tiktoken {
  const json = JSON.parse(readFileSync(path, 'utf8'));
  const decoder = byteDecoder();
  const lines: string[] = [];
  for (const [token, id] of Object.entries(json.model.vocab as Record<string, number>)) {
    const bytes = Array.from(token, (char) => decoder.get(char));
    if (bytes.some((b) => b === undefined)) continue;
    lines.push(`${Buffer.from(bytes as number[]).toString('base64')} ${id}`);
  }
  const special: Record<string, number> = {};
  for (const token of json.added_tokens as { content: string; id: number }[]) special[token.content] = token.id;
  const steps = json.pre_tokenizer.type === 'Sequence' ? json.pre_tokenizer.pretokenizers : [json.pre_tokenizer];
  const split = steps.find((step: { type: string }) => step.type === 'Split');
  const pattern = split ? split.pattern.Regex : "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
  return new Tiktoken(lines.join('\n'), special, pattern);
}

export function hfJsFrom(path: string, configPath: string): HfJsTokenizer {
  return new HfJsTokenizer(JSON.parse(readFileSync(path, 'utf8')), JSON.parse(readFileSync(configPath, 'utf8')));
}
