// `octomix tokenize` on corpora as they ship: EOS and BOS chosen by the user and checked against the vocabulary,
// dataset folders as hubs lay them out, JSON-array .json files, LaTeX in templates, the skipped-record threshold,
// and SIGINT in the middle of a run (dist/cli/main.js in a child process, as a user runs it).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/index.js';
import { loadAddon, packageRoot } from '../../src/native.js';
import { hf, hfEncodeAll, modelFiles } from '../helpers/oracle.js';
import { zstdRawFrame } from '../helpers/zstd-frame.js';
import { cli, shardDocuments, tokenizeCli } from '../helpers/tokenize-cli.js';

const octomix = (args: string[]) => tokenizeCli(args);
const documents = shardDocuments;

let folder: string;
let llama32: Tokenizer;

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'octomix-corpora-'));
  llama32 = await Tokenizer.fromFile(modelFiles.llama3_2);
  writeFileSync(join(folder, 'two.jsonl'), `${JSON.stringify({ text: 'Hello world' })}\n${JSON.stringify({ text: 'Second one' })}\n`);
});

describe('EOS and BOS', () => {
  it('--append-eos writes the bundled config\'s EOS (Llama-3.2\'s is the Instruct <|eot_id|>); --eos-token picks another, by name or id', () => {
    expect(llama32.specialTokens.eos).toEqual({ token: '<|eot_id|>', id: 128009 });
    const hello = Array.from(llama32.encode('Hello world', { addSpecialTokens: false }));
    const run = (name: string, extra: string[]) => {
      const out = join(folder, 'eos', name);
      const result = octomix(['--tokenizer', modelFiles.llama3_2, '--output', out, ...extra, join(folder, 'two.jsonl')]);
      expect(result.stderr).not.toMatch(/error/i);
      expect(result.code).toBe(0);
      return documents(out)[0];
    };
    expect(run('default', ['--append-eos'])).toEqual([...hello, 128009]);
    expect(run('named', ['--eos-token', '<|end_of_text|>'])).toEqual([...hello, 128001]);
    expect(run('by-id', ['--append-eos', '--eos-token', '128001'])).toEqual([...hello, 128001]);
    expect(run('bos', ['--bos-token', '<|begin_of_text|>', '--eos-token', '<|end_of_text|>'])).toEqual([128000, ...hello, 128001]);
  });

  it('refuses a token that is not in the vocabulary, an id past it, and names the options when no config says', () => {
    const input = join(folder, 'two.jsonl');
    const unknown = octomix(['--tokenizer', modelFiles.llama3_2, '--output', join(folder, 'x', 'a'), '--eos-token', '<|end|>', input]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--eos-token "<\|end\|>": not a token of this vocabulary \(its special tokens include <\|begin_of_text\|>/);
    const pastEnd = octomix(['--tokenizer', modelFiles.llama3_2, '--output', join(folder, 'x', 'b'), '--bos-token', '999999', input]);
    expect(pastEnd.code).toBe(2);
    expect(pastEnd.stderr).toMatch(/--bos-token 999999: no token has this id \(the vocabulary has 128256 ids\)/);
    // tokenizer.json alone, without the tokenizer_config.json that names EOS.
    mkdirSync(join(folder, 'bare'));
    copyFileSync(modelFiles.llama3_2, join(folder, 'bare', 'tokenizer.json'));
    const bare = octomix(['--tokenizer', join(folder, 'bare', 'tokenizer.json'), '--output', join(folder, 'x', 'c'), '--append-eos', input]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/names no EOS token .*; name one with --eos-token TOKEN\|ID/);
    expect(existsSync(join(folder, 'x', 'c.bin'))).toBe(false);
  });
});

describe('dataset folders', () => {
  it('takes a hub folder\'s data files, skips its card, metadata and dot files saying so, and takes .txt only with --text-files', () => {
    const hub = join(folder, 'hub');
    mkdirSync(join(hub, 'data'), { recursive: true });
    mkdirSync(join(hub, '.cache'));
    writeFileSync(join(hub, 'README.md'), '---\nlicense: odc-by\n---\n# A dataset card\n');
    writeFileSync(join(hub, 'dataset_info.json'), '{"features": {"text": {"dtype": "string"}}}\n');
    writeFileSync(join(hub, '.gitattributes'), '*.parquet filter=lfs\n');
    writeFileSync(join(hub, '.cache', 'x.jsonl'), '{"text":"cached"}\n');
    writeFileSync(join(hub, 'data', 'train-00000.jsonl'), '{"text":"first"}\n{"text":"second"}\n');
    writeFileSync(join(hub, 'notes.txt'), 'a plain document');
    const out = join(folder, 'hub-out', 'corpus');
    const run = octomix(['--tokenizer', modelFiles.llama3, '--output', out, hub]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/skipped 2 file\(s\) of the input folders \(dataset metadata\): .*README\.md, .*dataset_info\.json/);
    expect(run.stderr).toMatch(/skipped 2 file\(s\) of the input folders \(hidden\): .*\.cache, .*\.gitattributes/);
    expect(run.stderr).toMatch(/skipped 1 file\(s\) of the input folders \(a text document \(taken with --text-files, or when named\)\): .*notes\.txt/);
    const sources = (JSON.parse(readFileSync(`${out}.json`, 'utf8')).sources as { path: string }[]).map((source) => source.path.slice(hub.length + 1));
    expect(sources).toEqual(['data/train-00000.jsonl']);
    expect(documents(out)).toHaveLength(2);
    const withText = join(folder, 'hub-out', 'with-text');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', withText, '--text-files', hub]).code).toBe(0);
    expect((JSON.parse(readFileSync(`${withText}.json`, 'utf8')).sources as { path: string }[]).map((source) => source.path.slice(hub.length + 1)))
      .toEqual(['data/train-00000.jsonl', 'notes.txt']);
  });

  it('says a .json file holding one JSON array is not JSON Lines, in both parsers', () => {
    const array = join(folder, 'records.json');
    writeFileSync(array, '[\n  {"text": "one"},\n  {"text": "two"}\n]\n');
    for (const parser of ['native', 'js']) {
      const run = octomix(['--tokenizer', modelFiles.llama3, '--output', join(folder, 'array', parser), '--json-parser', parser, array]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/records\.json is one JSON array, not JSON Lines \(one JSON value per line\); convert it first, e\.g\. jq -c '\.\[\]'/);
    }
  });
});

describe('text that spells a special token', () => {
  it('tokens (default) gives HF\'s ids; text gives HF\'s ids with the special tokens left out of the split; both parsers count the documents', async () => {
    const texts = ['Hello <|end_of_text|> world <|begin_of_text|>!', 'plain text, nothing special', 'a <|eot_id|>b<|start_header_id|>c', '<|end_of_text'];
    const input = join(folder, 'special.jsonl');
    writeFileSync(input, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
    const json = JSON.parse(readFileSync(modelFiles.llama3, 'utf8'));
    const asTokens = await hfEncodeAll(hf.Tokenizer.fromString(JSON.stringify(json)), texts, false);
    // HF with encode_special_tokens: the same file without its special added tokens (they are all special here).
    const withoutSpecial = { ...json, added_tokens: json.added_tokens.filter((token: { special: boolean }) => !token.special) };
    const asText = await hfEncodeAll(hf.Tokenizer.fromString(JSON.stringify(withoutSpecial)), texts, false);
    expect(asText[0]).not.toEqual(asTokens[0]);
    for (const parser of ['native', 'js']) {
      for (const [mode, expected] of [['tokens', asTokens], ['text', asText]] as const) {
        const out = join(folder, 'special', `${parser}-${mode}`);
        const run = octomix(['--tokenizer', modelFiles.llama3, '--output', out, '--json-parser', parser, ...(mode === 'text' ? ['--special-tokens', 'text'] : []), input]);
        expect(run.code, run.stderr).toBe(0);
        expect(documents(out), `${parser} ${mode}`).toEqual(expected);
        const manifest = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
        expect(manifest).toMatchObject({ specialTokens: mode, specialTokenTextDocuments: 2 });
        expect(run.stderr).toMatch(mode === 'text' ? /2 document\(s\) spelled a special token .*encoded as plain text/ : /2 document\(s\) spelled a special token .*encoded as the special token itself; --special-tokens text/);
      }
    }
    const bad = octomix(['--tokenizer', modelFiles.llama3, '--output', join(folder, 'special', 'bad'), '--special-tokens', 'strip', input]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--special-tokens must be tokens or text, received "strip"/);
  });
});

// The same 500 documents as JSON Lines (plain, .gz, .zst of two frames) and as Parquet in every codec, in `dir`.
const texts = Array.from({ length: 500 }, (_, i) => `Document ${i}: ${'$\\theta_{' + i + '}$ and ünïcödé 数学 🙂 '.repeat(1 + (i % 13))}`);
texts[17] = '';
texts[18] = '\uFEFFstarts with a byte-order mark';
const writeCodecInputs = (dir: string) => {
  mkdirSync(dir, { recursive: true });
  const lines = Buffer.from(texts.map((text) => JSON.stringify({ text, id: texts.indexOf(text) })).join('\n') + '\n');
  writeFileSync(join(dir, 'plain.jsonl'), lines);
  writeFileSync(join(dir, 'gzip.jsonl.gz'), gzipSync(lines));
  writeFileSync(join(dir, 'zstd.jsonl.zst'), Buffer.concat([zstdRawFrame(lines.subarray(0, 100_000)), zstdRawFrame(lines.subarray(100_000))]));  // two frames
  const compressors = { ZSTD: (bytes: Uint8Array) => new Uint8Array(zstdRawFrame(bytes)), GZIP: (bytes: Uint8Array) => new Uint8Array(gzipSync(bytes)), BROTLI: (bytes: Uint8Array) => new Uint8Array(brotliCompressSync(bytes)) };
  for (const codec of ['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'ZSTD', 'BROTLI'] as const) {
    const buffer = parquetWriteBuffer({ columnData: [{ name: 'text', data: texts, type: 'STRING' }], rowGroupSize: 37, codec, compressors, pageSize: 4096 });
    writeFileSync(join(dir, `${codec.toLowerCase()}.parquet`), new Uint8Array(buffer));
  }
};

describe('resume on every format', () => {
  it('an interrupted run of each format and codec resumes after its last finished shard to the uninterrupted shards', () => {
    const dir = join(folder, 'resume-formats');
    writeCodecInputs(dir);
    for (const input of readdirSync(dir).filter((name) => !name.startsWith('out'))) {
      const args = (out: string) => ['--tokenizer', modelFiles.llama3, '--output', out, '--append-eos', '--max-shard-tokens', '8K', '--batch-bytes', '16K', '--parquet-workers', '2', join(dir, input)];
      const whole = join(dir, 'out-whole', input);
      expect(octomix(args(whole)).code, input).toBe(0);
      const cut = join(dir, 'out-cut', input);
      expect(octomix(args(cut)).code).toBe(0);
      const shards = readdirSync(join(dir, 'out-cut')).filter((name) => name.startsWith(`${input}_`) && name.endsWith('.json')).sort();
      expect(shards.length, input).toBeGreaterThan(3);
      // The last two shards lost, as a killed run leaves them (one without its manifest, one without its index).
      rmSync(join(dir, 'out-cut', shards.at(-1)!));
      rmSync(join(dir, 'out-cut', shards.at(-2)!.replace(/\.json$/, '.idx')));
      const resumed = octomix(args(cut));
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stderr).toContain(`kept ${shards.length - 2} verified shard(s); resuming at`);
      const names = readdirSync(join(dir, 'out-cut')).filter((name) => name.startsWith(`${input}_`) && !name.endsWith('.json')).sort();
      expect(names).toEqual(readdirSync(join(dir, 'out-whole')).filter((name) => name.startsWith(`${input}_`) && !name.endsWith('.json')).sort());
      for (const name of names) expect(readFileSync(join(dir, 'out-cut', name)).equals(readFileSync(join(dir, 'out-whole', name))), `${input} ${name}`).toBe(true);
    }
  }, 180_000);
});

describe('compressed inputs', () => {
  // Without the system libzstd (a name dlopen cannot find), .zst inputs and zstd Parquet pages fall back to fzstd.
  const withoutLibzstd = { OCTOMIX_ZSTD_LIBRARY: join(folder ?? tmpdir(), 'no-such-libzstd.so') };
  const octomixWith = (env: Record<string, string>, args: string[]) => tokenizeCli(args, env);

  it('the system libzstd is found here, and a name it cannot load is reported', () => {
    const addon = loadAddon();
    expect(addon.zstdLibrary()).toMatchObject({ loaded: true, library: 'libzstd.so.1' });
    // One frame, and a stream of two split anywhere; a page header's size is checked against the frame's own before
    // anything is allocated (a corrupt header once claimed gigabytes).
    const data = Buffer.from('Lorem ipsum $\\frac{1}{2}$ 数学 '.repeat(20_000));
    const frame = new Uint8Array(zstdRawFrame(data));
    expect(Buffer.from(addon.zstdDecompress(frame, data.length)).equals(data)).toBe(true);
    expect(() => addon.zstdDecompress(frame, data.length + 1)).toThrow(`corrupt zstd data: the frame holds ${data.length} bytes, the page header says ${data.length + 1}`);
    expect(() => addon.zstdDecompress(frame, 2 ** 31 - 1)).toThrow(/the frame holds \d+ bytes, the page header says 2147483647/);
    expect(() => addon.zstdDecompress(frame, 2 ** 31)).toThrow(RangeError);
    expect(() => addon.zstdDecompress(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 100)).toThrow('corrupt zstd data: not a zstd frame');
    const decode = (pieces: Uint8Array[], max: number) => {
      const stream = new addon.ZstdStream();
      const out: Uint8Array[] = [];
      for (const piece of pieces) {
        stream.push(piece);
        for (let chunk = stream.read(max); chunk.length > 0; chunk = stream.read(max)) {
          expect(chunk.length).toBeLessThanOrEqual(max);
          out.push(chunk);
        }
      }
      stream.end();
      return Buffer.concat(out);
    };
    const two = Buffer.concat([frame, frame]);
    expect(decode([two.subarray(0, 7), two.subarray(7, frame.length + 3), two.subarray(frame.length + 3)], 100_000).equals(Buffer.concat([data, data]))).toBe(true);
    // Output that ends exactly at a full 128 KiB output buffer is a finished frame, not a truncated one.
    const mebibyte = Buffer.alloc(1 << 20, 0x61);
    expect(decode([new Uint8Array(zstdRawFrame(mebibyte))], 1 << 20).equals(mebibyte)).toBe(true);
    expect(decode([new Uint8Array(zstdRawFrame(mebibyte))], 1 << 17).equals(mebibyte)).toBe(true);
    const cut = new addon.ZstdStream();
    cut.push(frame.subarray(0, frame.length - 1));
    cut.read(1 << 20);
    expect(() => cut.end()).toThrow('truncated zstd data: the input ends inside a frame');
    expect(() => cut.read(0)).toThrow(RangeError);
    const missing = spawnSync(process.execPath, ['--input-type=module', '-e', `import { loadAddon } from ${JSON.stringify(join(packageRoot, 'dist', 'native.js'))}; console.log(JSON.stringify(loadAddon().zstdLibrary()))`],
      { encoding: 'utf8', env: { ...process.env, ...withoutLibzstd } });
    expect(JSON.parse(missing.stdout)).toMatchObject({ loaded: false, error: expect.stringMatching(/no-such-libzstd\.so/) });
  });

  it('a .jsonl.zst whose text is a whole number of 128 KiB blocks reads to the end with either decoder', () => {
    const line = `${JSON.stringify({ text: 'x'.repeat(1000) })}\n`;
    const count = Math.floor((1 << 20) / line.length);
    const last = `${JSON.stringify({ text: 'y'.repeat((1 << 20) - count * line.length - 12) })}\n`;
    const body = Buffer.from(line.repeat(count) + last);
    expect(body.length).toBe(1 << 20);
    const input = join(folder, 'mebibyte.jsonl.zst');
    writeFileSync(input, zstdRawFrame(body));
    for (const env of [{}, withoutLibzstd]) {
      const run = octomixWith(env, ['--tokenizer', modelFiles.llama3, '--output', join(folder, 'mebibyte', `x${Object.keys(env).length}`), input]);
      expect(run.stderr).toMatch(new RegExp(`^octomix tokenize: ${(count + 1).toLocaleString('en')} documents`));
      expect(run.code).toBe(0);
    }
  });

  it('a .zst that is not zstd data, or is cut inside a frame, fails naming the file with either decoder', () => {
    const bad = join(folder, 'bad.jsonl.zst');
    writeFileSync(bad, 'not a zstd frame at all');
    const truncated = join(folder, 'truncated.jsonl.zst');
    const frame = zstdRawFrame(Buffer.from(`${JSON.stringify({ text: 'Hello world' })}\n`.repeat(5000)));
    writeFileSync(truncated, frame.subarray(0, frame.length - 100));
    for (const [decoder, env] of [['libzstd', {}], ['fzstd', withoutLibzstd]] as const) {
      for (const [input, message] of [[bad, decoder === 'libzstd' ? /bad\.jsonl\.zst: corrupt zstd data: Unknown frame descriptor/ : /bad\.jsonl\.zst: invalid zstd data/],
        [truncated, decoder === 'libzstd' ? /truncated\.jsonl\.zst: truncated zstd data: the input ends inside a frame/ : /truncated\.jsonl\.zst: unexpected EOF/]] as const) {
        const out = join(folder, `bad-zst-${decoder}`, 'x');
        const run = octomixWith(env, ['--tokenizer', modelFiles.llama3, '--output', out, input]);
        expect(run.code, `${decoder} ${input}`).toBe(1);
        expect(run.stderr).toMatch(message);
        expect(readdirSync(join(folder, `bad-zst-${decoder}`)).filter((name) => !name.endsWith('.lock'))).toEqual([]);
      }
    }
  });

  it('JSON Lines and Parquet in every codec hub files use give the JSON Lines shards, with 1 or 3 decoding threads and either zstd decoder', async () => {
    const dir = join(folder, 'codecs');
    writeCodecInputs(dir);
    const llama3 = await Tokenizer.fromFile(modelFiles.llama3);
    const base = join(dir, 'out', 'plain');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', base, '--append-eos', join(dir, 'plain.jsonl')]).code).toBe(0);
    const expected = documents(base);
    expect(expected).toEqual((await hfEncodeAll(hf.Tokenizer.fromFile(modelFiles.llama3), texts, false)).filter((ids) => ids.length > 0).map((ids) => [...ids, 128001]));  // the empty one is a boundary only
    for (const input of readdirSync(dir).filter((name) => name !== 'plain.jsonl' && name !== 'out')) {
      for (const [label, env, extra] of [['3 threads', {}, ['--parquet-workers', '3']], ['1 thread, fzstd', withoutLibzstd, ['--parquet-workers', '1']]] as const) {
        const out = join(dir, 'out', `${input}-${label.replace(/\W+/g, '-')}`);
        const run = octomixWith(env, ['--tokenizer', modelFiles.llama3, '--output', out, '--append-eos', ...extra, join(dir, input)]);
        expect(run.stderr, `${input} ${label}`).toMatch(/^octomix tokenize: 500 documents, [\d.]+K tokens/);
        expect(run.code).toBe(0);
        expect(readFileSync(`${out}.bin`).equals(readFileSync(`${base}.bin`)), `${input} ${label}`).toBe(true);
        expect(readFileSync(`${out}.idx`).equals(readFileSync(`${base}.idx`)), `${input} ${label}`).toBe(true);
      }
    }
    // All five Parquet files in one run: decoding runs on across file ends, and the documents keep file order.
    const parquetFiles = readdirSync(dir).filter((name) => name.endsWith('.parquet')).sort().map((name) => join(dir, name));
    const together = join(dir, 'out', 'together');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', together, '--append-eos', '--parquet-workers', '3', ...parquetFiles]).code).toBe(0);
    expect(documents(together)).toEqual(parquetFiles.flatMap(() => expected));

    // A template over Parquet values (UTF-8 bytes from the decoding threads) gives what it gives over JSON Lines.
    const template = ['--template', 'Q{{{id}}}: {text}\\n\\theta'];
    const templated = join(dir, 'out', 'template-jsonl');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', templated, ...template, join(dir, 'plain.jsonl')]).code).toBe(0);
    const withIds = parquetWriteBuffer({ columnData: [{ name: 'text', data: texts, type: 'STRING' }, { name: 'id', data: texts.map((text) => texts.indexOf(text)), type: 'INT32' }], rowGroupSize: 50 });
    writeFileSync(join(folder, 'with-ids.parquet'), new Uint8Array(withIds));
    const templatedParquet = join(dir, 'out', 'template-parquet');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', templatedParquet, ...template, join(folder, 'with-ids.parquet')]).code).toBe(0);
    expect(readFileSync(`${templatedParquet}.bin`).equals(readFileSync(`${templated}.bin`))).toBe(true);
    expect(documents(templatedParquet)[18]).toEqual(Array.from(llama3.encode(`Q{18}: ${texts[18]}\n\\theta`, { addSpecialTokens: false })));

    // Invalid UTF-8 in a Parquet value is counted and replaced by U+FFFD, as in a JSON Lines record.
    const raw = [Buffer.from('fine text'), Buffer.from([0x61, 0xff, 0x62, 0xc3])];
    const invalid = parquetWriteBuffer({ columnData: [{ name: 'text', data: raw.map((bytes) => new Uint8Array(bytes)), type: 'BYTE_ARRAY' }] });
    writeFileSync(join(folder, 'invalid.parquet'), new Uint8Array(invalid));
    const invalidOut = join(dir, 'out', 'invalid');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', invalidOut, join(folder, 'invalid.parquet')]).code).toBe(0);
    expect(JSON.parse(readFileSync(`${invalidOut}.json`, 'utf8')).invalidUtf8Records).toBe(1);
    expect(documents(invalidOut)).toEqual([Array.from(llama3.encode('fine text', { addSpecialTokens: false })), Array.from(llama3.encode('a\uFFFDb\uFFFD', { addSpecialTokens: false }))]);

    // A damaged file fails naming it, whichever thread decoded the bad part, and leaves no shard behind.
    const good = readFileSync(join(dir, 'zstd.parquet'));
    const damaged = join(folder, 'damaged');
    mkdirSync(damaged);
    writeFileSync(join(damaged, 'cut.parquet'), good.subarray(0, good.length - 50));
    const flipped = Buffer.from(good);
    for (let i = 4000; i < 4400; i++) flipped[i] ^= 0x5a;  // inside the column data, past the first pages
    writeFileSync(join(damaged, 'flipped.parquet'), flipped);
    for (const name of ['cut.parquet', 'flipped.parquet']) {
      const out = join(damaged, 'out', name);
      const run = octomix(['--tokenizer', modelFiles.llama3, '--output', out, '--parquet-workers', '3', join(damaged, name)]);
      expect(run.code, name).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`^octomix: .*damaged/${name.replace('.', '\\.')}: \\S`));
      expect(run.stderr.split(name).length, run.stderr).toBe(2);  // the file is named once
      expect(readdirSync(join(damaged, 'out')).filter((file) => file.startsWith(name) && !file.endsWith('.lock'))).toEqual([]);
    }
    const after = octomix(['--tokenizer', modelFiles.llama3, '--output', join(damaged, 'out', 'after'), '--parquet-workers', '2', join(dir, 'snappy.parquet'), join(damaged, 'cut.parquet')]);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/damaged\/cut\.parquet: \S/);
    expect(after.stderr).not.toMatch(/snappy\.parquet/);
    const zero = octomix(['--tokenizer', modelFiles.llama3, '--output', join(dir, 'out', 'zero'), '--parquet-workers', '0', join(dir, 'snappy.parquet')]);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--parquet-workers must be an integer from 1 to 256, received "0"/);
  }, 120_000);

  it('many .gz and .zst files in one run (decoded ahead of their turn) give the shards of their records in one plain file, with either parser; a bad file among them fails naming it', () => {
    const dir = join(folder, 'many-compressed');
    mkdirSync(dir);
    const record = (file: number, i: number) => JSON.stringify({ text: `file ${file}, record ${i}: $\\alpha^${i}$ ${'数学 '.repeat((file * 13 + i) % 50)}` });
    const inputs: string[] = [];
    const plain: string[] = [];
    for (let file = 0; file < 6; file++) {
      const body = Array.from({ length: 200 + file * 150 }, (_, i) => record(file, i)).join('\n') + '\n';
      plain.push(body);
      const name = join(dir, `part-${file}.jsonl${file % 2 === 0 ? '.gz' : '.zst'}`);
      writeFileSync(name, file % 2 === 0 ? gzipSync(body) : zstdRawFrame(Buffer.from(body)));
      inputs.push(name);
    }
    writeFileSync(join(dir, 'all.jsonl'), plain.join(''));
    const base = join(dir, 'out', 'plain');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', base, '--append-eos', join(dir, 'all.jsonl')]).code).toBe(0);
    for (const parser of ['native', 'js']) {
      const out = join(dir, 'out', `mixed-${parser}`);
      const run = octomix(['--tokenizer', modelFiles.llama3, '--output', out, '--append-eos', '--json-parser', parser, ...inputs]);
      expect(run.code, run.stderr).toBe(0);
      expect(readFileSync(`${out}.bin`).equals(readFileSync(`${base}.bin`)), parser).toBe(true);
      expect(readFileSync(`${out}.idx`).equals(readFileSync(`${base}.idx`)), parser).toBe(true);
    }
    // A corrupt .zst after good files: the error names it, not a file decoded before or after it.
    writeFileSync(join(dir, 'broken.jsonl.zst'), 'not zstd');
    const broken = octomix(['--tokenizer', modelFiles.llama3, '--output', join(dir, 'out', 'broken'), inputs[0], inputs[1], join(dir, 'broken.jsonl.zst'), inputs[2]]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/broken\.jsonl\.zst: corrupt zstd data/);
    expect(broken.stderr).not.toMatch(/part-\d/);
    // A .gz cut short, read ahead after a good file: the same, and no shard is left behind.
    const whole = readFileSync(inputs[2]);
    writeFileSync(join(dir, 'cut.jsonl.gz'), whole.subarray(0, whole.length >> 1));
    const cut = octomix(['--tokenizer', modelFiles.llama3, '--output', join(dir, 'cut-out', 'x'), inputs[0], join(dir, 'cut.jsonl.gz')]);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/cut\.jsonl\.gz: unexpected end of file/);
    expect(readdirSync(join(dir, 'cut-out')).filter((name) => !name.endsWith('.lock'))).toEqual([]);
  }, 60_000);
});

describe('templates', () => {
  it('keeps LaTeX backslashes: only \\n and \\\\ are escapes on the command line ({{ }} are literal braces), and --template-file is verbatim', async () => {
    const input = join(folder, 'qa.jsonl');
    writeFileSync(input, `${JSON.stringify({ question: 'Is $x > 0$?', answer: 'Yes', messages: [{ content: 'first turn' }] })}\n`);
    const tokenizer = await Tokenizer.fromFile(modelFiles.llama3);
    const text = (prefix: string) => tokenizer.decode(documents(prefix)[0]);
    const typed = join(folder, 'tpl', 'typed');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', typed, '--template', 'Let $\\theta \\\\neq 0$ and \\frac{{a}}{{b}}.\\nQ: {question}\\nA: {answer} ({messages.0.content})', input]).code).toBe(0);
    expect(text(typed)).toBe('Let $\\theta \\neq 0$ and \\frac{a}{b}.\nQ: Is $x > 0$?\nA: Yes (first turn)');
    const file = join(folder, 'template.txt');
    writeFileSync(file, 'Problem: {question}\n\\begin{{align}} \\nabla f \\end{{align}}\\n{answer}\n');
    const fromFile = join(folder, 'tpl', 'file');
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', fromFile, '--template-file', file, input]).code).toBe(0);
    expect(text(fromFile)).toBe('Problem: Is $x > 0$?\n\\begin{align} \\nabla f \\end{align}\\nYes');
    const both = octomix(['--tokenizer', modelFiles.llama3, '--output', join(folder, 'tpl', 'both'), '--template', '{question}', '--field', 'answer', input]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give --field or --template, not both/);
  });
});

describe('runs that tell the truth', () => {
  it('a run whose records mostly lack the field fails naming --field; one that writes no document fails too', () => {
    const input = join(folder, 'wrong-field.jsonl');
    writeFileSync(input, Array.from({ length: 20 }, (_, i) => JSON.stringify(i < 2 ? { text: `doc ${i}` } : { content: `doc ${i}` })).join('\n') + '\n');
    const run = octomix(['--tokenizer', modelFiles.llama3, '--output', join(folder, 'truth', 'a'), '--skip-bad-records', input]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/18 of 20 records \(90\.0%\) were skipped \(18 missing-field\), more than --max-skipped 10\.0% allows; most have no field "text": check --field/);
    expect(run.stderr).toMatch(/no shard is kept; the output is not marked complete, so a rerun fails the same way/);
    expect(existsSync(join(folder, 'truth', 'a.bin'))).toBe(false);
    expect(octomix(['--tokenizer', modelFiles.llama3, '--output', join(folder, 'truth', 'a'), '--skip-bad-records', input]).code).toBe(1);  // again
    const none = octomix(['--tokenizer', modelFiles.llama3, '--output', join(folder, 'truth', 'b'), '--skip-bad-records', '--max-skipped', '100%', '--field', 'body', input]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no document was written: the inputs hold only skipped records \(20 missing-field\); most have no field "body"/);
    const bad = octomix(['--tokenizer', modelFiles.llama3, '--output', join(folder, 'truth', 'c'), '--skip-bad-records', '--max-skipped', '1.5', input]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-skipped must be a share like 10% or 0\.1 \(at most 100%\), received "1\.5"/);
  });

  it('SIGINT stops the run with one line saying what is kept, removes the unfinished shard\'s temporaries, and a rerun resumes to the same shards', async () => {
    const input = join(folder, 'long.jsonl');
    const line = `${JSON.stringify({ text: 'The quick brown fox jumps over the lazy dog. '.repeat(20) })}\n`;
    writeFileSync(input, line.repeat(Math.ceil(24e6 / line.length)));
    const out = join(folder, 'interrupted', 'corpus');
    const args = [cli, 'tokenize', '--tokenizer', modelFiles.llama3, '--output', out, '--max-shard-tokens', '200K', '--workers', '1', '--batch-bytes', '1M', '--progress', 'none', input];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => { stderr += chunk; });
    const manifests = () => (existsSync(join(folder, 'interrupted')) ? readdirSync(join(folder, 'interrupted')).filter((name) => name.endsWith('.json')) : []);
    while (manifests().length < 2) await new Promise((done) => setTimeout(done, 20));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((done) => child.once('exit', done));
    expect(code).toBe(130);
    expect(stderr).toMatch(/octomix tokenize: SIGINT: stopped; \d+ finished shard\(s\) are kept and the unfinished one's temporary files were removed; rerun the same command to resume after the last finished shard/);
    expect(readdirSync(join(folder, 'interrupted')).filter((name) => name.includes('.tmp-'))).toEqual([]);
    const resumed = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(resumed.status).toBe(0);
    expect(resumed.stderr).toMatch(/kept \d+ verified shard\(s\); resuming at/);
    const whole = join(folder, 'uninterrupted', 'corpus');
    expect(spawnSync(process.execPath, [...args.slice(0, 5), whole, ...args.slice(6)], { encoding: 'utf8' }).status).toBe(0);
    const names = (dir: string) => readdirSync(join(folder, dir)).filter((name) => !name.endsWith('.json') && !name.endsWith('.lock')).sort();
    expect(names('interrupted')).toEqual(names('uninterrupted'));
    for (const name of names('interrupted')) expect(readFileSync(join(folder, 'interrupted', name)).equals(readFileSync(join(folder, 'uninterrupted', name))), name).toBe(true);
  }, 180_000);
});
