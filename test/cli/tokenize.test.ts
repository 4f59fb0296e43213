// `octomix tokenize` end to end, as a user runs it (dist/cli/main.js in a child process): every input format, the
// shards' contents against the tokenizer, identical output for any --workers, shard cutting, resume after an
// interruption, --part, bad records, and clean failures.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenDataset, Tokenizer } from '../../src/index.js';
import { packageRoot } from '../../src/native.js';
import { loadCorpus } from '../fixtures/corpus.js';
import { modelFiles } from '../helpers/oracle.js';
import { zstdRawFrame } from '../helpers/zstd-frame.js';

const cli = join(packageRoot, 'dist', 'cli', 'main.js');
function octomix(args: string[], options: { cwd?: string; shell?: string } = {}) {
  const result = options.shell
    ? spawnSync('bash', ['-c', options.shell], { cwd: options.cwd, encoding: 'utf8' })
    : spawnSync(process.execPath, [cli, ...args], { cwd: options.cwd, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

let tokenizer: Tokenizer;
let folder: string;
let texts: string[];
const llama = modelFiles.llama3;

beforeAll(async () => {
  tokenizer = await Tokenizer.fromFile(llama);
  folder = mkdtempSync(join(tmpdir(), 'octomix-tokenize-'));
  // Real multi-domain text, split over every input format.
  texts = loadCorpus({ maxBytesPerDomain: 20_000 }).map((document) => document.text);
  const jsonl = (list: string[]) => list.map((text) => JSON.stringify({ text, meta: { id: text.length } })).join('\n') + '\n';
  const quarter = Math.ceil(texts.length / 4);
  mkdirSync(join(folder, 'in'));
  writeFileSync(join(folder, 'in', 'a.jsonl'), jsonl(texts.slice(0, quarter)));
  writeFileSync(join(folder, 'in', 'b.jsonl.gz'), gzipSync(jsonl(texts.slice(quarter, 2 * quarter))));
  writeFileSync(join(folder, 'in', 'c.jsonl'), jsonl(texts.slice(2 * quarter, 3 * quarter)));
  // A zstd frame of raw blocks, made here (no zstd command needed); test/interop checks compressed frames.
  writeFileSync(join(folder, 'in', 'c.jsonl.zst'), zstdRawFrame(readFileSync(join(folder, 'in', 'c.jsonl'))));
  rmSync(join(folder, 'in', 'c.jsonl'));
  const parquet = parquetWriteBuffer({ columnData: [{ name: 'text', data: texts.slice(3 * quarter), type: 'STRING' }], rowGroupSize: 7 });
  writeFileSync(join(folder, 'in', 'd.parquet'), new Uint8Array(parquet));
});

function expectedDocuments(list: string[], eos: number): number[][] {
  return list.map((text) => {
    const ids = Array.from(tokenizer.encode(text, { addSpecialTokens: false }));
    return ids.length > 0 ? [...ids, eos] : [];
  });
}

function readAll(prefixes: string[]): number[][] {
  const dataset = TokenDataset.open(prefixes);
  return Array.from({ length: dataset.numDocuments }, (_, i) => Array.from(dataset.document(i) as Int32Array));
}

describe('octomix tokenize', () => {
  it('turns JSONL, JSONL.gz, JSONL.zst and Parquet into shards that verify and hold exactly the tokenizer ids', () => {
    const out = join(folder, 'all', 'corpus');
    const run = octomix(['tokenize', '--tokenizer', llama, '--output', out, '--append-eos', '--progress', 'lines', join(folder, 'in')]);
    expect(run.stderr).toMatch(/octomix tokenize: [\d,]+ documents, .* tokens \(int32\) in 1 new shard\(s\)/);
    expect(run.stderr).toMatch(/^[\d,]+ docs, [\d.]+[KM]? tokens, [\d.]+ MB\/s, [\d.]+[KM]? tokens\/s/m);  // a plain progress line
    expect(run.code).toBe(0);
    expect(octomix(['verify', out]).code).toBe(0);
    expect(readAll([out])).toEqual(expectedDocuments(texts, 128001).filter((ids) => ids.length > 0));
    const manifest = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
    expect(manifest.tokenizer.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.sources.map((source: { path: string }) => source.path.split('/').pop())).toEqual(['a.jsonl', 'b.jsonl.gz', 'c.jsonl.zst', 'd.parquet']);
    expect(manifest).toMatchObject({ eos: { id: 128001 }, bos: null, dtype: 'int32', complete: true, documents: texts.length });
  });

  it('counts Parquet input in the same unit as JSON Lines: the decoded bytes of what was read', () => {
    const out = join(folder, 'parquet-bytes', 'corpus');
    const run = octomix(['tokenize', '--tokenizer', llama, '--output', out, '--progress', 'none', join(folder, 'in', 'd.parquet')]);
    expect(run.code).toBe(0);
    const quarter = Math.ceil(texts.length / 4);
    const expected = texts.slice(3 * quarter).reduce((sum, text) => sum + Buffer.byteLength(text, 'utf8'), 0);
    expect(JSON.parse(readFileSync(`${out}.json`, 'utf8')).bytesRead).toBe(expected);
  });

  it('writes identical bytes whatever --workers is', () => {
    const outputs = ['1', '2'].map((workers) => {
      const out = join(folder, `workers-${workers}`, 'corpus');
      expect(octomix(['tokenize', '--tokenizer', llama, '--output', out, '--workers', workers, '--batch-bytes', '20K', '--progress', 'none', join(folder, 'in')]).code).toBe(0);
      return out;
    });
    expect(readFileSync(`${outputs[0]}.bin`)).toEqual(readFileSync(`${outputs[1]}.bin`));
    expect(readFileSync(`${outputs[0]}.idx`)).toEqual(readFileSync(`${outputs[1]}.idx`));
  });

  it('cuts numbered shards and resumes after an interruption, redoing only the rest', () => {
    const whole = join(folder, 'whole', 'corpus');
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', whole, '--progress', 'none', join(folder, 'in')]).code).toBe(0);
    const cut = join(folder, 'cut', 'corpus');
    const args = ['tokenize', '--tokenizer', llama, '--output', cut, '--max-shard-tokens', '10K', '--batch-bytes', '16K', '--progress', 'none', join(folder, 'in')];
    expect(octomix(args).code).toBe(0);
    const shards = readdirSync(join(folder, 'cut')).filter((name) => name.endsWith('.idx')).sort();
    expect(shards.length).toBeGreaterThan(3);
    const prefixes = shards.map((name) => join(folder, 'cut', name.replace(/\.idx$/, '')));
    expect(readAll(prefixes)).toEqual(readAll([whole]));
    expect(octomix(['verify', cut]).stdout.match(/^ok /gm)).toHaveLength(shards.length);

    // Interrupt: the last two shards are lost (one half-written), a stale temporary is left behind.
    const before = prefixes.map((prefix) => statSync(`${prefix}.bin`).mtimeMs);
    rmSync(`${prefixes.at(-1)}.json`);
    rmSync(`${prefixes.at(-2)}.idx`);
    writeFileSync(`${prefixes.at(-1)}.bin.tmp-2147483646-0`, 'partial');  // a dead process's temporary
    const resumed = octomix(args);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain(`kept ${shards.length - 2} verified shard(s)`);
    expect(prefixes.slice(0, -2).map((prefix) => statSync(`${prefix}.bin`).mtimeMs)).toEqual(before.slice(0, -2));
    expect(readdirSync(join(folder, 'cut')).some((name) => name.includes('.tmp-'))).toBe(false);
    expect(readAll(prefixes)).toEqual(readAll([whole]));
    expect(octomix(['verify', cut]).code).toBe(0);
    // A complete run is not redone; a run with other options refuses to mix outputs.
    expect(octomix(args).stderr).toContain('already complete and verified; nothing to do');
    const other = octomix([...args, '--append-eos']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/written by a different run .* use --force/);
    // --force with larger shards: fewer shards, and none of the old ones left behind.
    expect(octomix([...args.map((arg) => (arg === '10K' ? '40K' : arg)), '--force']).code).toBe(0);
    const after = readdirSync(join(folder, 'cut')).filter((name) => name.endsWith('.idx'));
    expect(after.length).toBeLessThan(shards.length);
    expect(octomix(['verify', cut]).stdout.match(/^ok /gm)).toHaveLength(after.length);
    expect(readAll(after.sort().map((name) => join(folder, 'cut', name.replace(/\.idx$/, ''))))).toEqual(readAll([whole]));
  });

  it('cuts shards by .bin bytes with --max-shard-bytes', () => {
    const out = join(folder, 'bytes', 'corpus');
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', out, '--max-shard-bytes', '64Ki', '--batch-bytes', '16K', '--progress', 'none', join(folder, 'in')]).code).toBe(0);
    const bins = readdirSync(join(folder, 'bytes')).filter((name) => name.endsWith('.bin')).sort();
    expect(bins.length).toBeGreaterThan(1);
    bins.slice(0, -1).forEach((name) => expect(statSync(join(folder, 'bytes', name)).size).toBeGreaterThanOrEqual(65536));
    expect(octomix(['verify', out]).code).toBe(0);
  });

  it('cuts at 1 GiB of .bin when no --max-shard-* is given, and names an output of one shard PREFIX, resumed or not', () => {
    const out = join(folder, 'default-cut', 'corpus');
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', out, '--progress', 'none', join(folder, 'in')]).code).toBe(0);
    const manifest = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
    expect([manifest.maxShardBytes, manifest.maxShardTokens, manifest.complete]).toEqual([2 ** 30, null, true]);
    expect(readdirSync(join(folder, 'default-cut')).filter((name) => !name.endsWith('.lock')).sort()).toEqual(['corpus.bin', 'corpus.idx', 'corpus.json']);
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', out, '--progress', 'none', join(folder, 'in')]).stderr).toContain('already complete and verified; nothing to do');

    // A cut that the output never reaches gives one shard under the plain name too; so does a run that resumed from
    // that one numbered shard, finished but not yet renamed when the process died.
    const one = join(folder, 'one-shard', 'corpus');
    const args = ['tokenize', '--tokenizer', llama, '--output', one, '--max-shard-tokens', '100M', '--progress', 'none', join(folder, 'in')];
    expect(octomix(args).code).toBe(0);
    for (const suffix of ['bin', 'idx', 'json']) renameSync(`${one}.${suffix}`, `${one}_00000.${suffix}`);
    const resumed = octomix(args);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('1 shard(s) already complete and verified');
    expect(readdirSync(join(folder, 'one-shard')).filter((name) => !name.endsWith('.lock')).sort()).toEqual(['corpus.bin', 'corpus.idx', 'corpus.json']);
    const again = octomix([...args, '--force']);
    expect(again.code).toBe(0);
    expect(readdirSync(join(folder, 'one-shard')).filter((name) => !name.endsWith('.lock')).sort()).toEqual(['corpus.bin', 'corpus.idx', 'corpus.json']);
    expect(readAll([one])).toEqual(readAll([out]));
  });

  it('takes globs, and draws a progress bar on a terminal', () => {
    const out = join(folder, 'glob', 'corpus');
    const run = octomix(['tokenize', '--tokenizer', llama, '--output', out, '--progress', 'tty', join(folder, 'in', '*.jsonl*')]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/\r\x1b\[2K\[#*\.*\] [\d.]+% [\d,]+ docs/);
    const sources = JSON.parse(readFileSync(`${out}.json`, 'utf8')).sources.map((source: { path: string }) => source.path.split('/').pop());
    expect(sources).toEqual(['a.jsonl', 'b.jsonl.gz', 'c.jsonl.zst']);
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', out, join(folder, 'in', '*.csv')]).stderr).toMatch(/input .*\*\.csv: no readable files match/);
  });

  it('resumes after kill -9 in the middle of a run and ends with the same shards as an uninterrupted run', async () => {
    const input = join(folder, 'long.jsonl');
    const line = texts.map((text) => JSON.stringify({ text })).join('\n') + '\n';
    writeFileSync(input, line.repeat(Math.ceil(30e6 / line.length)));
    const cut = join(folder, 'killed', 'corpus');
    const args = [cli, 'tokenize', '--tokenizer', llama, '--output', cut, '--max-shard-tokens', '300K', '--workers', '1', '--progress', 'none', input];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    const manifests = () => (existsSync(join(folder, 'killed')) ? readdirSync(join(folder, 'killed')).filter((name) => name.endsWith('.json')) : []);
    while (manifests().length < 3) await new Promise((done) => setTimeout(done, 20));
    child.kill('SIGKILL');
    await new Promise((done) => child.once('exit', done));
    const resumed = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(resumed.status).toBe(0);
    expect(resumed.stderr).toMatch(/kept \d+ verified shard\(s\); resuming at .*long\.jsonl record \d+/);
    const whole = join(folder, 'unkilled', 'corpus');
    expect(spawnSync(process.execPath, [cli, 'tokenize', '--tokenizer', llama, '--output', whole, '--max-shard-tokens', '300K', '--progress', 'none', input]).status).toBe(0);
    const names = (dir: string) => readdirSync(join(folder, dir)).sort();
    expect(names('killed')).toEqual(names('unkilled'));
    for (const name of names('killed').filter((n) => !n.endsWith('.json'))) {
      expect(readFileSync(join(folder, 'killed', name)).equals(readFileSync(join(folder, 'unkilled', name))), name).toBe(true);
    }
  }, 120_000);

  it('splits the input files between machines with --part, balanced by bytes', () => {
    const parts = ['0/2', '1/2'].map((part) => {
      const out = join(folder, `part-${part.replace('/', '-')}`, 'corpus');
      expect(octomix(['tokenize', '--tokenizer', llama, '--output', out, '--part', part, '--progress', 'none', join(folder, 'in')]).code).toBe(0);
      return (JSON.parse(readFileSync(`${out}.json`, 'utf8')).sources as { path: string; size: number }[]).map((source) => ({ name: source.path.split('/').pop()!, size: source.size }));
    });
    // Every file in exactly one part, and the parts within one file of each other (largest first to the lightest).
    expect(parts.flat().map((file) => file.name).sort()).toEqual(['a.jsonl', 'b.jsonl.gz', 'c.jsonl.zst', 'd.parquet']);
    const loads = parts.map((files) => files.reduce((sum, file) => sum + file.size, 0));
    expect(Math.abs(loads[0] - loads[1])).toBeLessThanOrEqual(Math.max(...parts.flat().map((file) => file.size)));
    // verify checks the union of the parts: all of them, complete, no file twice.
    const outputs = ['0-2', '1-2'].map((part) => join(folder, `part-${part}`, 'corpus'));
    const union = octomix(['verify', ...outputs]);
    expect(union.code).toBe(0);
    expect(union.stdout).toMatch(/^ok {3}parts: all 2 of 2 complete, 4 input files, none in two parts/m);
    // One part's own output verifies alone (a machine checks its part); two of three parts are not the union.
    expect(octomix(['verify', outputs[0]]).code).toBe(0);
    const thirds = ['0/3', '1/3'].map((part) => {
      const out = join(folder, `third-${part.replace('/', '-')}`, 'corpus');
      expect(octomix(['tokenize', '--tokenizer', llama, '--output', out, '--part', part, '--progress', 'none', join(folder, 'in')]).code).toBe(0);
      return out;
    });
    const partial = octomix(['verify', ...thirds]);
    expect(partial.code).toBe(1);
    expect(partial.stdout).toMatch(/^FAIL parts: part\(s\) 2\/3 of 3 are missing/m);
  });

  it('formats QA records with --template and takes nested fields with --field', () => {
    const input = join(folder, 'qa.jsonl');
    writeFileSync(input, `${JSON.stringify({ question: 'What is 2+2?', answer: '4', meta: { body: 'nested text' } })}\n`);
    const out = join(folder, 'qa', 'qa');
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', out, '--template', 'Question: {question}\\nAnswer: {answer}', '--progress', 'none', input]).code).toBe(0);
    expect(readAll([out])).toEqual([Array.from(tokenizer.encode('Question: What is 2+2?\nAnswer: 4', { addSpecialTokens: false }))]);
    const nested = join(folder, 'qa', 'nested');
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', nested, '--field', 'meta.body', '--prepend-bos', '--progress', 'none', input]).code).toBe(0);
    expect(readAll([nested])).toEqual([[128000, ...Array.from(tokenizer.encode('nested text', { addSpecialTokens: false }))]]);
  });

  it('gives the same shards and counts with the native and the JS JSON parser, on tricky lines', () => {
    const input = join(folder, 'tricky.jsonl');
    const lines = [
      '\ufeff{"text":"first line after a BOM"}',
      '{"text":"escapes \\n \\t \\" \\\\ \\u00e9 \\ud83d\\ude00 pair"}',
      '{"text":"lone \\ud800 high and \\udc00 low and \\ud800\\u0041"}',
      '',
      '   ',
      '\u00a0',
      '{"text":"crlf line"}\r',
      '{"meta":{"body":"nested"},"text":"dup 1","text":"dup 2"}',
      '"a bare string line"',
      '{"text":null}',
      '{"text":["not", "a", "string"]}',
      '{"text": 12}',
      '{broken',
      '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
      '{"text":"<|begin_of_text|> special text and emoji 🦙"}',
      '{"text":""}',
    ];
    writeFileSync(input, Buffer.concat([
      Buffer.from(lines.join('\n') + '\n'),
      Buffer.from('{"text":"invalid \xc3\x28 bytes \xff"}\n', 'latin1'),
      Buffer.from('{"text":"no final newline"}'),
    ]));
    const outputs = ['native', 'js'].map((parser) => {
      const out = join(folder, `parser-${parser}`, 'tricky');
      const run = octomix(['tokenize', '--tokenizer', llama, '--output', out, '--json-parser', parser, '--skip-bad-records', '--max-skipped', '100%', '--append-eos', '--progress', 'none', input]);
      expect(run.stderr).toContain('octomix tokenize:');
      expect(run.code).toBe(0);
      return out;
    });
    expect(readFileSync(`${outputs[0]}.bin`)).toEqual(readFileSync(`${outputs[1]}.bin`));
    expect(readFileSync(`${outputs[0]}.idx`)).toEqual(readFileSync(`${outputs[1]}.idx`));
    const [native, js] = outputs.map((out) => JSON.parse(readFileSync(`${out}.json`, 'utf8')));
    for (const key of ['documents', 'sequences', 'tokens', 'emptyDocuments', 'invalidUtf8Records', 'skippedRecords', 'digest']) {
      expect(native[key], key).toEqual(js[key]);
    }
    expect(native.skippedRecords).toEqual({ 'malformed-json': 1, 'missing-field': 2, 'non-string-field': 2, 'bad-conversation': 0 });
    const ids = readAll([outputs[0]]);
    expect(tokenizer.decode(ids[2])).toBe('lone \uFFFD high and \uFFFD low and \uFFFDA<|end_of_text|>');
    expect(tokenizer.decode(ids[4])).toBe('dup 2<|end_of_text|>');
    expect(tokenizer.decode(ids[5])).toBe('a bare string line<|end_of_text|>');
  });

  it('looks fields up as own properties in both parsers: --field constructor or toString is a field only when the record has it', () => {
    const input = join(folder, 'prototype-names.jsonl');
    writeFileSync(input, '{"text":"plain"}\n{"constructor":"has it"}\n{"toString":"other"}\n');
    for (const field of ['constructor', 'toString']) {
      const manifests = ['native', 'js'].map((parser) => {
        const out = join(folder, `proto-${field}-${parser}`, 'shard');
        const run = octomix(['tokenize', '--tokenizer', llama, '--output', out, '--field', field, '--json-parser', parser, '--skip-bad-records', '--max-skipped', '100%', '--progress', 'none', input]);
        expect(run.code, `${field} ${parser}: ${run.stderr}`).toBe(0);
        return JSON.parse(readFileSync(`${out}.json`, 'utf8'));
      });
      expect(manifests[0].documents, field).toBe(1);
      expect(manifests[0].skippedRecords, field).toEqual({ 'malformed-json': 0, 'missing-field': 2, 'non-string-field': 0, 'bad-conversation': 0 });
      expect(manifests[1].documents, field).toBe(manifests[0].documents);
      expect(manifests[1].skippedRecords, field).toEqual(manifests[0].skippedRecords);
      expect(manifests[1].digest, field).toEqual(manifests[0].digest);
    }
  });

  it('stops at a bad record with file:line, or counts bad records, invalid UTF-8 and empty documents', () => {
    const input = join(folder, 'bad.jsonl');
    writeFileSync(input, Buffer.concat([
      Buffer.from('{"text":"good"}\n{"text": broken}\n{"other":"x"}\n{"text":7}\n{"text":""}\n'),
      Buffer.from('{"text":"bad \xff byte"}\n', 'latin1'),
    ]));
    const out = join(folder, 'bad', 'shard');
    const stopped = octomix(['tokenize', '--tokenizer', llama, '--output', out, '--progress', 'none', input]);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toMatch(/bad\.jsonl:2: unexpected character 'b' at byte 9 \(use --skip-bad-records/);
    expect(existsSync(join(folder, 'bad'))).toBe(true);
    expect(readdirSync(join(folder, 'bad'))).toEqual([]);
    // Half the records are bad: past the default --max-skipped 10% the run fails, naming the counts (shards kept).
    const tooMany = octomix(['tokenize', '--tokenizer', llama, '--output', out, '--skip-bad-records', '--append-eos', '--progress', 'none', input]);
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toMatch(/3 of 6 records \(50\.0%\) were skipped \(1 missing-field, 1 malformed-json, 1 non-string-field\), more than --max-skipped 10\.0% allows/);
    const skipped = octomix(['tokenize', '--tokenizer', llama, '--output', out, '--force', '--skip-bad-records', '--max-skipped', '50%', '--append-eos', '--progress', 'none', input]);
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toMatch(/; skipped 1 malformed-json, 1 missing-field, 1 non-string-field$/m);
    const manifest = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
    expect(manifest).toMatchObject({
      skippedRecords: { 'malformed-json': 1, 'missing-field': 1, 'non-string-field': 1, 'bad-conversation': 0 },
      emptyDocuments: 1, invalidUtf8Records: 1, documents: 3, sequences: 2,
    });
    expect(readAll([out])).toEqual(expectedDocuments(['good', 'bad \uFFFD byte'], 128001));
    const missing = octomix(['tokenize', '--tokenizer', llama, '--output', out, '--force', '--field', 'nope', '--progress', 'none', input]);
    expect(missing.stderr).toMatch(/bad\.jsonl:1: no field "nope"/);
  });

  it('fails clearly on wrong options, missing inputs and unwritable output, leaving no shard behind', () => {
    expect(octomix(['tokenize', '--tokenizer', llama, join(folder, 'in')]).stderr).toMatch(/--output PREFIX is required/);
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', join(folder, 'x'), '--part', '2/2', join(folder, 'in')]).stderr).toMatch(/--part must be I\/N with 0 <= I < N, received "2\/2"/);
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', join(folder, 'x'), '--max-shard-tokens', 'lots', join(folder, 'in')]).stderr).toMatch(/--max-shard-tokens must be a number like 65536, 4M/);
    const missing = octomix(['tokenize', '--tokenizer', llama, '--output', join(folder, 'x'), join(folder, 'absent.jsonl')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/input .*absent\.jsonl: no such file or folder/);
    const notAFolder = join(folder, 'a-file');
    writeFileSync(notAFolder, 'x');
    const unwritable = octomix(['tokenize', '--tokenizer', llama, '--output', join(notAFolder, 'corpus'), join(folder, 'in')]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toMatch(/--output .*a-file\/corpus: cannot create the folder .*a-file: a file is in the way/);
  });

  it('reports a full disk (here: a file-size limit) and removes the partial shard', () => {
    const out = join(folder, 'full', 'corpus');
    const run = octomix([], { shell: `ulimit -f 64; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} tokenize --tokenizer ${JSON.stringify(llama)} --output ${JSON.stringify(out)} --progress none ${JSON.stringify(join(folder, 'in'))}` });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot write .*corpus_00000\.bin\.tmp-\d+-\d+: File too large \[SHARD_WRITE\]/);
    expect(readdirSync(join(folder, 'full'))).toEqual([]);
  });
});

describe('octomix inspect and verify', () => {
  it('prints counts, percentiles, a histogram and decoded documents', () => {
    const out = join(folder, 'all', 'corpus');
    const run = octomix(['inspect', '--tokenizer', llama, '--show', '1', out]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/documents: [\d,]+ non-empty \(Megatron sequences\)\ntokens: +[\d,]+ .*\ndtype: +int32\nlength: +min \d+, p10 \d+, p50 \d+, p90 \d+, p99 \d+, max \d+/);
    expect(run.stdout).toMatch(/histogram \(tokens per document\):\n +\d+-\d+ #+/);
    expect(run.stdout).toContain(`--- document 0`);
  });

  it('exits non-zero when a shard does not match its manifest', () => {
    const source = join(folder, 'all', 'corpus');
    const copy = join(folder, 'tampered');
    mkdirSync(copy);
    for (const suffix of ['bin', 'idx', 'json']) writeFileSync(join(copy, `corpus.${suffix}`), readFileSync(`${source}.${suffix}`));
    const bin = readFileSync(join(copy, 'corpus.bin'));
    bin[100] ^= 0xff;
    writeFileSync(join(copy, 'corpus.bin'), bin);
    const run = octomix(['verify', join(copy, 'corpus')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^FAIL .*corpus: digest [0-9a-f]{64}, the manifest says [0-9a-f]{64}/m);
    rmSync(join(copy, 'corpus.idx'));
    expect(octomix(['verify', join(copy, 'corpus')]).stdout).toMatch(/corpus\.idx: missing/);
  });
});

describe('octomix tokenize against a changing world', () => {
  const line = (i: number) => `${JSON.stringify({ text: `document ${i} ${'x'.repeat(i % 50)}` })}\n`;
  const fifo = (path: string) => expect(spawnSync('mkfifo', [path]).status).toBe(0);
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [cli, 'tokenize', '--tokenizer', llama, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk; });
    const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
    return done;
  };
  // The run holds PREFIX.lock once it has listed its inputs and before it reads them.
  const locked = async (prefix: string) => {
    for (let waited = 0; !existsSync(`${prefix}.lock`); waited += 20) {
      if (waited > 30_000) throw new Error(`${prefix}.lock never appeared`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it('an input that shrinks while the run reads it fails the run; nothing is marked complete', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octomix-shrink-'));
    // The first input is a pipe, so the run is still waiting on it when the second one is cut short.
    fifo(join(dir, 'a.jsonl'));
    const lines = Array.from({ length: 3000 }, (_, i) => line(i)).join('');
    writeFileSync(join(dir, 'b.jsonl'), lines);
    const run = start(['--output', join(dir, 'out', 'corpus'), join(dir, 'a.jsonl'), join(dir, 'b.jsonl')]);
    await locked(join(dir, 'out', 'corpus'));
    writeFileSync(join(dir, 'b.jsonl'), lines.slice(0, lines.indexOf('\n', lines.length / 3) + 1));  // another process truncates it at a line end
    writeFileSync(join(dir, 'a.jsonl'), line(1));  // opens the pipe's writing end, writes, closes
    const { code, stderr } = await run;
    expect(code).toBe(1);
    expect(stderr).toMatch(/b\.jsonl changed while it was read: it was \d+ bytes .*, \d+ bytes were read|b\.jsonl changed while it was read: it was \d+ bytes/);
    expect(stderr).toContain('[INPUT_CHANGED]');
    const manifests = existsSync(join(dir, 'out')) ? readdirSync(join(dir, 'out')).filter((name) => name.endsWith('.json')) : [];
    for (const manifest of manifests) expect(JSON.parse(readFileSync(join(dir, 'out', manifest), 'utf8')).complete).not.toBe(true);
  }, 60_000);

  it('two runs on one output: the second is refused while the first holds the output, and the first completes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octomix-lock-'));
    fifo(join(dir, 'a.jsonl'));
    writeFileSync(join(dir, 'b.jsonl'), line(2));
    const first = start(['--output', join(dir, 'out', 'corpus'), join(dir, 'a.jsonl')]);
    await locked(join(dir, 'out', 'corpus'));
    const second = octomix(['tokenize', '--tokenizer', llama, '--output', join(dir, 'out', 'corpus'), join(dir, 'b.jsonl')]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/--output .*corpus: another octomix tokenize is writing this output \(it holds .*corpus\.lock\); wait for it to finish, or choose another --output/);
    writeFileSync(join(dir, 'a.jsonl'), line(1));
    expect((await first).code).toBe(0);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['corpus.bin', 'corpus.idx', 'corpus.json']);  // the lock is gone with the run
    expect(octomix(['verify', join(dir, 'out', 'corpus')]).code).toBe(0);
    // Once the first is done, the output is free again.
    expect(octomix(['tokenize', '--tokenizer', llama, '--output', join(dir, 'out', 'other'), join(dir, 'b.jsonl')]).code).toBe(0);
  }, 60_000);
});
