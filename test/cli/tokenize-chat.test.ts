// `octomix tokenize` on instruction and QA data: conversations rendered with the tokenizer's own chat template
// (Llama-3.2, Qwen3), --template with a {@train} marker, and the loss-mask shards --train-on writes beside the token
// shards. Ids are checked against Hugging Face tokenizers on the rendered text; masks by decoding the trained tokens.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/index.js';
import { ChatTemplate, type ChatMessage } from '../../src/preprocess/chat-template.js';
import { chatFormatter } from '../../src/preprocess/format.js';
import { hf, modelFiles } from '../helpers/oracle.js';
import { cli, shardDocuments, tokenizeCli } from '../helpers/tokenize-cli.js';

const octomix = (args: string[]) => tokenizeCli(args);
const documents = shardDocuments;
const config = (model: 'llama3_2' | 'qwen3') => JSON.parse(readFileSync(join(dirname(modelFiles[model]), 'tokenizer_config.json'), 'utf8')) as { chat_template: string };

let folder: string;
const conversations: ChatMessage[][] = [
  [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'What is $\\theta$ if $2\\theta = \\pi$?' }, { role: 'assistant', content: '$\\theta = \\frac{\\pi}{2}$' },
    { role: 'user', content: 'And café?' }, { role: 'assistant', content: 'Café is a word.' }],
  [{ role: 'user', content: 'Say hi' }, { role: 'assistant', content: 'Hi! 🙂 数学' }],
  [{ role: 'user', content: 'Spell <|eot_id|> please' }, { role: 'assistant', content: 'No.' }],
];

beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'octomix-chat-'));
  writeFileSync(join(folder, 'chat.jsonl'), conversations.map((messages, i) => JSON.stringify({ id: i, conversation: { messages } })).join('\n') + '\n');
});

describe('chat templates', () => {
  for (const [model, eot, spelled] of [['llama3_2', '<|eot_id|>', 1], ['qwen3', '<|im_end|>', 0]] as const) {
    it(`${model}: ids are HF's for the rendered conversation, and the mask trains exactly the assistant turns and their ${eot}`, async () => {
      const out = join(folder, model, 'chat');
      const run = octomix(['--tokenizer', modelFiles[model], '--output', out, '--chat-template', 'auto', '--messages-field', 'conversation.messages', '--train-on', 'assistant', '--append-eos', join(folder, 'chat.jsonl')]);
      // Llama's third conversation spells <|eot_id|> in a message; the template's own markup does not count.
      if (spelled > 0) expect(run.stderr).toMatch(/1 document\(s\) spelled a special token in their text/);
      else expect(run.stderr).not.toMatch(/spelled a special token/);
      expect(run.code).toBe(0);
      const tokenizer = await Tokenizer.fromFile(modelFiles[model]);
      const chat = new ChatTemplate(config(model).chat_template, { specialTokens: { eos_token: tokenizer.specialTokens.eos!.token, ...(tokenizer.specialTokens.bos ? { bos_token: tokenizer.specialTokens.bos.token } : {}) }, specialTokenTexts: tokenizer.specialTokens.added.filter((token) => token.special).map((token) => token.content) });
      const oracle = hf.Tokenizer.fromFile(modelFiles[model]);
      const ids = documents(out);
      const masks = documents(`${out}.mask`);
      const eos = tokenizer.specialTokens.eos!.id;
      for (let i = 0; i < conversations.length; i++) {
        const { text, spans } = chat.renderWithAssistantSpans(conversations[i]);
        expect(ids[i]).toEqual([...(await oracle.encode(text, null, { addSpecialTokens: false })).getIds(), eos]);
        expect(masks[i]).toHaveLength(ids[i].length);
        // The trained tokens decode to the assistant spans, in order. The appended EOS is trained when the text's last
        // token is: Llama's conversation ends with the answer's <|eot_id|>, Qwen's with a newline after <|im_end|>.
        const trainedText = ids[i].filter((_, k) => masks[i][k] === 1);
        const lastTrained = text.endsWith(eot);
        expect(masks[i].at(-1)).toBe(lastTrained ? 1 : 0);
        expect(tokenizer.decode(Uint32Array.from(trainedText))).toBe(spans.map(([start, end]) => text.slice(start, end)).join('') + (lastTrained ? tokenizer.specialTokens.eos!.token : ''));
        expect(masks[i][0]).toBe(0);
      }
      const manifest = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
      expect(manifest.lossMask).toMatchObject({ trainOn: 'assistant', trainedTokens: masks.flat().filter((bit) => bit === 1).length });
      expect(manifest.text).toMatchObject({ chatTemplate: { source: 'tokenizer_config.json' }, messagesField: 'conversation.messages', chatDate: null });
      expect(manifest.specialTokenTextDocuments).toBe(spelled);
      expect(spawnSync(process.execPath, [cli, 'verify', out], { encoding: 'utf8' }).status).toBe(0);
    });
  }

  it('--chat-date sets what strftime_now gives; a conversation the template cannot take is a bad record', async () => {
    const llama32 = await Tokenizer.fromFile(modelFiles.llama3_2);
    const out = join(folder, 'dated', 'chat');
    expect(octomix(['--tokenizer', modelFiles.llama3_2, '--output', out, '--chat-template', 'auto', '--messages-field', 'conversation.messages', '--chat-date', '2025-01-05', join(folder, 'chat.jsonl')]).code).toBe(0);
    expect(llama32.decode(Uint32Array.from(documents(out)[1]))).toContain('Today Date: 05 Jan 2025\n\n');
    const bad = join(folder, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify({ messages: [{ role: 'user', content: 'ok' }, { role: 'assistant', content: 'fine' }] })}\n${JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image' }] }] })}\n${JSON.stringify({ messages: [] })}\n`);
    const failed = octomix(['--tokenizer', modelFiles.llama3_2, '--output', join(folder, 'bad', 'c'), '--chat-template', 'auto', bad]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/bad\.jsonl:2: field "messages": message 0 has no string "content" \(lists of content parts are not supported\) \(use --skip-bad-records/);
    const skipped = octomix(['--tokenizer', modelFiles.llama3_2, '--output', join(folder, 'bad', 'c'), '--chat-template', 'auto', '--skip-bad-records', '--max-skipped', '90%', bad]);
    expect(skipped.code).toBe(0);
    expect(JSON.parse(readFileSync(join(folder, 'bad', 'c.json'), 'utf8')).skippedRecords['bad-conversation']).toBe(2);
  });

  it('a Parquet row\'s conversation (strings as UTF-8 bytes) renders as the same conversation as JSON', () => {
    const chat = new ChatTemplate(config('qwen3').chat_template, { specialTokens: { eos_token: '<|im_end|>' } });
    const formatter = chatFormatter(chat, 'messages', false, []);
    const bytes = (text: string) => new TextEncoder().encode(text);
    const row = { messages: conversations[1].map((message) => ({ role: bytes(message.role), content: bytes(message.content) })) };
    expect(formatter.format(row)).toEqual(formatter.format({ messages: conversations[1] }));
    expect(formatter.columns).toEqual(['messages']);
  });
});

describe('templates with {@train} and --train-on all', () => {
  it('trains on the answer after {@train} and the EOS; --train-on all trains on everything', async () => {
    const input = join(folder, 'qa.jsonl');
    const records = [{ q: 'What is $\\alpha$?', a: 'A Greek letter.' }, { q: 'Why?', a: 'Because \\frac{1}{2}.' }];
    writeFileSync(input, records.map((record) => JSON.stringify(record)).join('\n') + '\n');
    const out = join(folder, 'qa', 'c');
    const run = octomix(['--tokenizer', modelFiles.llama3, '--output', out, '--template', 'Question: {q}\\nAnswer:{@train} {a}', '--train-on', 'assistant', '--append-eos', input]);
    expect(run.code, run.stderr).toBe(0);
    const tokenizer = await Tokenizer.fromFile(modelFiles.llama3);
    const ids = documents(out);
    const masks = documents(`${out}.mask`);
    records.forEach((record, i) => {
      expect(ids[i]).toEqual([...tokenizer.encode(`Question: ${record.q}\nAnswer: ${record.a}`, { addSpecialTokens: false }), 128001]);
      expect(tokenizer.decode(Uint32Array.from(ids[i].filter((_, k) => masks[i][k] === 1)))).toBe(` ${record.a}<|end_of_text|>`);
    });
    // The marker right before the field: the answer's first token (" A", its space before the marker) is trained.
    const tight = join(folder, 'qa-tight', 'c');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', tight, '--template', 'Q: {q}\nAnswer: {@train}{a}', '--train-on', 'assistant', input]).code).toBe(0);
    const tightIds = documents(tight);
    const tightMasks = documents(`${tight}.mask`);
    records.forEach((record, i) => expect(tokenizer.decode(Uint32Array.from(tightIds[i].filter((_, k) => tightMasks[i][k] === 1)))).toBe(` ${record.a}`));
    const all = join(folder, 'all', 'c');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', all, '--field', 'a', '--train-on', 'all', input]).code).toBe(0);
    expect(documents(`${all}.mask`).flat().every((bit) => bit === 1)).toBe(true);
    expect(JSON.parse(readFileSync(`${all}.json`, 'utf8')).lossMask.trainOn).toBe('all');
  });

  it('cut into shards, every shard has its mask; an interrupted run resumes them', () => {
    const input = join(folder, 'many.jsonl');
    writeFileSync(input, Array.from({ length: 300 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}, ${'more '.repeat(i % 17)}` }] })).join('\n') + '\n');
    const out = join(folder, 'many', 'c');
    const args = ['--tokenizer', modelFiles.qwen3, '--output', out, '--chat-template', 'auto', '--train-on', 'assistant', '--max-shard-tokens', '2K', '--batch-bytes', '4K', input];
    expect(octomix(args).code).toBe(0);
    const names = readdirSync(join(folder, 'many')).filter((name) => !name.endsWith('.lock')).sort();
    const shards = names.filter((name) => /^c_\d{5}\.idx$/.test(name));
    expect(shards.length).toBeGreaterThan(3);
    expect(names.filter((name) => /^c_\d{5}\.mask\.idx$/.test(name))).toHaveLength(shards.length);
    expect(spawnSync(process.execPath, [cli, 'verify', out], { encoding: 'utf8' }).stdout.match(/^ok /gm)).toHaveLength(shards.length);
    const before = readFileSync(join(folder, 'many', 'c_00002.mask.bin'));
    // The last shard's mask is lost: the shard does not verify and is redone with it.
    writeFileSync(join(folder, 'many', shards.at(-1)!.replace('.idx', '.mask.bin')), 'broken');
    const resumed = octomix(args);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/does not verify .*mask.*redoing it/);
    expect(readFileSync(join(folder, 'many', 'c_00002.mask.bin')).equals(before)).toBe(true);
    expect(spawnSync(process.execPath, [cli, 'verify', out], { encoding: 'utf8' }).status).toBe(0);
  });

  it('refuses option combinations that cannot mean anything, naming the fix', () => {
    const input = join(folder, 'qa.jsonl');
    const out = join(folder, 'usage', 'c');
    const cases: [string[], RegExp][] = [
      [['--field', 'a', '--train-on', 'assistant'], /--train-on assistant needs to know which text is the answer: use --chat-template, or mark where the answer begins in --template with \{@train\}/],
      [['--template', 'Q: {q} {@train}{a}'], /--template holds \{@train\}, which marks the trained answer for a loss mask: add --train-on assistant/],
      [['--template', '{@train}{q}{@train}{a}', '--train-on', 'assistant'], /may hold one \{@train\} marker/],
      [['--field', 'a', '--chat-template', 'auto'], /give --field or --chat-template, not both/],
      [['--messages-field', 'm'], /--messages-field needs --chat-template/],
      [['--chat-template', 'auto', '--special-tokens', 'text'], /--special-tokens text cannot be used with --chat-template/],
      [['--chat-template', 'auto', '--prepend-bos'], /the template writes the BOS itself/],
      [['--chat-template', 'auto', '--chat-date', '2025-02-30x'], /the date must be YYYY-MM-DD, received "2025-02-30x"/],
      [['--chat-template', join(folder, 'missing.jinja')], /--chat-template .*missing\.jinja: cannot read it/],
      [['--train-on', 'everything'], /--train-on must be assistant or all, received "everything"/],
    ];
    for (const [extra, message] of cases) {
      const run = octomix(['--tokenizer', modelFiles.llama3_2, '--output', out, ...extra, input]);
      expect(run.code, extra.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
    }
    // A base model's config has no chat template: the error says to give one.
    const base = octomix(['--tokenizer', modelFiles.gpt2, '--output', out, '--chat-template', 'auto', input]);
    expect(base.code).toBe(2);
    expect(base.stderr).toMatch(/has no chat_template|cannot read .*tokenizer_config\.json/);
  });
});
