// Differential test on real multi-domain text (test/fixtures/corpus.ts: prose, code, LaTeX math, messy e-mail,
// Chinese, Japanese, Russian, Arabic, Hindi, emoji): every document's ids must equal tokenizers 0.23.2's, through
// encode, encodeBatch and the Uint8Array path, and decode must give back what HF's decode gives.
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/index.js';
import { corpusDomains, loadCorpus, type CorpusDocument } from '../fixtures/corpus.js';
import { describeMismatch, hf, hfEncodeAll, type HfTokenizer, modelFiles, modelNames } from '../helpers/oracle.js';

let corpus: CorpusDocument[];
beforeAll(() => {
  corpus = loadCorpus();
});

it('covers every domain with real text', () => {
  const bytesPerDomain = new Map<string, number>();
  for (const document of corpus) {
    bytesPerDomain.set(document.domain, (bytesPerDomain.get(document.domain) ?? 0) + Buffer.byteLength(document.text));
  }
  for (const domain of ['english', 'code', 'latex-math', 'email', 'chinese', 'japanese', 'russian', 'arabic', 'hindi', 'emoji']) {
    expect(corpusDomains).toContain(domain);
    expect(bytesPerDomain.get(domain) ?? 0, domain).toBeGreaterThan(100_000);
  }
});

describe.each(modelNames)('corpus vs tokenizers 0.23.2: %s', (name) => {
  let ours: Tokenizer;
  let theirs: HfTokenizer;
  beforeAll(async () => {
    ours = await Tokenizer.fromFile(modelFiles[name], { backend: 'native' });
    theirs = hf.Tokenizer.fromFile(modelFiles[name]);
  });

  it('gives identical ids for every document (encode, bytes, encodeBatch)', async () => {
    const texts = corpus.map((document) => document.text);
    const expected = await hfEncodeAll(theirs, texts);
    const batch = await ours.encodeBatch(texts);
    const encoder = new TextEncoder();
    const mismatches: string[] = [];
    for (let i = 0; i < texts.length; i++) {
      const single = ours.encode(texts[i]);
      const same = (ids: Uint32Array) => ids.length === expected[i].length && ids.every((id, k) => id === expected[i][k]);
      if (!same(single)) mismatches.push(`${corpus[i].domain} ${corpus[i].source}: ${describeMismatch(texts[i], single, expected[i])}`);
      else if (!same(batch[i])) mismatches.push(`${corpus[i].domain} ${corpus[i].source}: encodeBatch differs from encode`);
      else if (!same(ours.encode(encoder.encode(texts[i])))) mismatches.push(`${corpus[i].domain} ${corpus[i].source}: Uint8Array path differs`);
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  }, 300_000);

  it('decodes every document as HF decodes it', async () => {
    const sample = corpus.filter((_, i) => i % 4 === 0);
    const ids = sample.map((document) => ours.encode(document.text, { addSpecialTokens: false }));
    const expected = await (theirs as unknown as { decodeBatch(ids: number[][], skip: boolean): Promise<string[]> })
      .decodeBatch(ids.map((list) => Array.from(list)), false);
    sample.forEach((document, i) => expect(ours.decode(ids[i]), `${document.domain} ${document.source}`).toBe(expected[i]));
  }, 120_000);
});
