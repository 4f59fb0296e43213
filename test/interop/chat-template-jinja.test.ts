// Chat templates against the reference: Python's Jinja2, set up as transformers' apply_chat_template sets it up
// (test/helpers/render_chat.py), for every template of the bundled tokenizer configs, on random conversations, with
// and without a fixed date. Runs under `npm run test:interop`, which needs python3 with jinja2 (CI installs
// python3-jinja2).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChatTemplate, ChatTemplateError } from '../../src/preprocess/chat-template.js';
import { chatConfig, conversations } from '../helpers/chat.js';
import { findPython } from '../helpers/python.js';

describe('chat templates as transformers renders them', () => {
  it('renders every bundled template as transformers does (Python Jinja2)', () => {
    const jinja = findPython(['jinja2']);
    const samples = fc.sample(fc.tuple(conversations, fc.boolean()), { numRuns: 150, seed: 42 });
    for (const model of ['llama3_2', 'llama3_1', 'llama3', 'qwen3', 'qwen2_5', 'deepseek_v3'] as const) {
      const { chat_template: source, ...fields } = chatConfig(model) as { chat_template: string } & Record<string, unknown>;
      const text = (token: unknown) => (typeof token === 'string' ? token : (token as { content?: string } | null)?.content);
      const variables = Object.fromEntries(['bos_token', 'eos_token', 'unk_token', 'pad_token'].map((name) => [name, text(fields[name])]).filter(([, value]) => typeof value === 'string'));
      for (const date of [undefined, '2025-01-05']) {
        const ours = new ChatTemplate(source, { specialTokens: variables as Record<string, string>, date });
        const result = spawnSync(jinja.python, [join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'render_chat.py')], {
          input: JSON.stringify({ template: source, variables, date: date ?? null, cases: samples.map(([messages, generation]) => ({ messages, add_generation_prompt: generation })) }), encoding: 'utf8', maxBuffer: 1 << 28,
        });
        expect(result.status, result.stderr).toBe(0);
        const expected = JSON.parse(result.stdout) as (string | { error: string })[];
        samples.forEach(([messages, generation], i) => {
          const want = expected[i];
          if (typeof want === 'string') expect(ours.render(messages, generation), `${model} ${date} ${JSON.stringify(messages)}`).toBe(want);
          else expect(() => ours.render(messages, generation), `${model} ${JSON.stringify(messages)}`).toThrow(ChatTemplateError);
        });
      }
    }
  }, 60_000);
});
