// Chat-template test material: the tokenizer_config.json of a bundled tokenizer, and random conversations (LaTeX,
// newlines, padding, any Unicode; no text of the templates' own markup) for property tests.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import type { ChatMessage } from '../../src/preprocess/chat-template.js';
import { modelFiles } from './oracle.js';

export function chatConfig(model: keyof typeof modelFiles): { chat_template: string } & Record<string, unknown> {
  return JSON.parse(readFileSync(join(dirname(modelFiles[model]), 'tokenizer_config.json'), 'utf8')) as { chat_template: string } & Record<string, unknown>;
}

const content = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.constantFrom('$\\frac{a}{b}$', ' padded ', '\n\nlines\n', '数学 🙂', ''))
  .filter((text) => !/<\/?think>|<\|/.test(text));

/** Alternating user and assistant turns, one to four of each. */
export const conversations = fc.array(fc.tuple(content, content), { minLength: 1, maxLength: 4 })
  .map((turns) => turns.flatMap(([question, answer]): ChatMessage[] => [{ role: 'user', content: question }, { role: 'assistant', content: answer }]));
