#!/usr/bin/env node
/**
 * generate-unicode-tables.mjs — writes native/tokenizer/unicode_tables.h
 *
 * Rerun with:  npm run generate:unicode
 *   (= node scripts/generate-unicode-tables.mjs; needs the devDependency
 *    `tokenizers` (Hugging Face tokenizers' Node binding) and `python3`)
 *
 * (Long on purpose: one generator, run once per tokenizers release, whose probes and
 *  table writers only make sense together; nothing imports it.)
 *
 * WHY PROBING
 * -----------
 * octomix must reproduce Hugging Face tokenizers bit for bit, and HF does not
 * use one Unicode version. Inside the Rust crate:
 *   - Split/ByteLevel regexes run on Oniguruma, with its own (Unicode 16.0)
 *     property data: \p{L}, \p{N}, \p{M}, \s;
 *   - the NFC/NFD normalizers use the crate unicode-normalization-alignments,
 *     whose tables are Unicode 9.0;
 *   - the added-token `single_word` check uses the Rust `regex` crate's
 *     Unicode \w;
 *   - the Digits pre-tokenizer uses Rust's `char::is_numeric` (Unicode version
 *     of the Rust toolchain that built the binding).
 * Node's ICU (Unicode 17 for Node 20's current builds) and Python 3.11's
 * unicodedata (Unicode 14) both disagree with some of those. So instead of
 * trusting any Unicode database, this script asks the installed
 * `tokenizers` package itself, for every Unicode scalar value
 * (U+0000..U+10FFFF minus the surrogates U+D800..U+DFFF, which the binding
 * cannot receive), and writes exactly what HF does.
 *
 * HOW EACH CLASS IS PROBED (all in batches of many code points per call)
 * --------------------------------------------------------------------
 *   L, N, M, S  A tokenizer whose pre-tokenizer is
 *               Split{pattern: Regex("\p{L}" | "\p{N}" | "\p{M}" | "\s"),
 *               behavior: Removed}. A batch holding each probed code point
 *               once is pre-tokenized; the pieces that remain are a
 *               subsequence of the input, and the code points missing from it
 *               are exactly those the Oniguruma class matched.
 *   W (kWord)   A byte-level tokenizer (ids == UTF-8 bytes) with the added
 *               token "\u0001" (single_word, special, not normalized). For the
 *               text  c1 "\u0001" " "  c2 "\u0001" " " ...  the token is split
 *               out (id 256) iff its left neighbour c is NOT \w (the right
 *               neighbour, a space, never is). U+0001 itself is probed with
 *               the token "\u0002" instead.
 *   D (kNumeric) The Digits pre-tokenizer (individual_digits = true) on
 *               "a" c1 "a" c2 "a" ...: a numeric char becomes a piece of its
 *               own, a non-numeric one merges with the "a"s around it.
 *   NFC data    Python's unicodedata (Unicode 14) is used only as the
 *               CANDIDATE source of combining classes and single-step
 *               canonical decompositions; HF decides what survives:
 *               - full decomposition: HF NFD of every scalar (separated by
 *                 U+0001, which has no decomposition and is a starter);
 *                 a code point decomposes in HF iff NFD(cp) != cp;
 *               - combining class: every non-decomposing scalar m is put
 *                 after U+0301 (ccc 230) and before U+0334 (ccc 1); HF moves
 *                 U+0334 in front of m iff ccc(m) > 1 and moves m in front of
 *                 U+0301 iff 0 < ccc(m) < 230, so m is a non-starter in HF iff
 *                 either reorder happens. The value is Python's (combining
 *                 classes never change once assigned) and is then verified
 *                 by HF reordering every non-starter against one reference
 *                 mark of every distinct class value, in both orders.
 *                 Candidates HF does not reorder (newer than HF's data) get 0;
 *                 a code point HF reorders but Python calls a starter aborts.
 *               - compositions: every P that decomposes in HF and that HF's
 *                 NFC leaves unchanged is a primary composite; its pair is
 *                 Python's single-step decomposition, checked by HF NFC of the
 *                 pair giving back P. Hangul syllables are excluded from both
 *                 tables (the C++ side does Hangul algorithmically; the
 *                 algorithm is checked against HF for all 11,172 syllables).
 *   Q (kNfcMaybe) set iff ccc != 0, or HF NFC(cp) != cp, or cp is the second
 *               element of a composition pair, or cp is a Hangul V jamo
 *               (U+1161..U+1175) or T jamo (U+11A8..U+11C2). A string
 *               without any Q code point is unchanged by NFC.
 *
 * VALIDATION (the script exits non-zero on any failure)
 *   A JS reference NFC over the generated tables (full decomposition, stable
 *   canonical ordering, canonical composition with the blocking rule,
 *   algorithmic Hangul) is compared with HF's NFC on thousands of seeded
 *   random strings of letters, precomposed letters, combining marks of many
 *   classes, Hangul jamo/syllables and Indic sequences; the Q claim is checked
 *   on random Q-free strings.
 *
 * Outputs (deterministic; no timestamps):
 *   native/tokenizer/unicode_tables.h      the C++17 header-only tables
 *   scripts/unicode-tables.summary.json    counts and hashes, for review diffs
 */
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const HEADER_PATH = join(ROOT, 'native', 'tokenizer', 'unicode_tables.h');
const SUMMARY_PATH = join(ROOT, 'scripts', 'unicode-tables.summary.json');
const EXPECTED_HF_VERSION = '0.23.2';

const require = createRequire(join(ROOT, 'package.json'));
const hf = require('tokenizers');
const HF_VERSION = require('tokenizers/package.json').version;

const MAX_CP = 0x110000;
const BATCH = 65536;
const SEP = '\u0001'; // starter, no decomposition, not numeric, not \w, no class
// U+E000 (private use): also a starter without decomposition or composition.
const SEPARATORS = [SEP, '\uE000'];

const started = performance.now();
const log = (...a) => console.log(`[${((performance.now() - started) / 1000).toFixed(1)}s]`, ...a);
const failures = [];
function fail(msg) {
  failures.push(msg);
  console.error('FAIL:', msg);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}
const hex = (cp) => 'U+' + cp.toString(16).toUpperCase().padStart(4, '0');
const hexs = (s) => [...s].map((c) => hex(c.codePointAt(0))).join(' ');
const cpsOf = (s) => Array.from(s, (c) => c.codePointAt(0));
const str = (cps) => cps.map((c) => String.fromCodePoint(c)).join('');

if (HF_VERSION !== EXPECTED_HF_VERSION) {
  console.warn(`warning: probing tokenizers@${HF_VERSION}, the tables were designed against ${EXPECTED_HF_VERSION}`);
}

/** All Unicode scalar values, i.e. code points minus surrogates. */
const SCALARS = [];
for (let cp = 0; cp < MAX_CP; cp++) if (cp < 0xd800 || cp > 0xdfff) SCALARS.push(cp);
function* batches(list, size = BATCH) {
  for (let i = 0; i < list.length; i += size) yield list.slice(i, i + size);
}

// ---------------------------------------------------------------------------
// Tokenizer construction helpers
// ---------------------------------------------------------------------------

/** GPT-2 bytes_to_unicode: byte -> printable char. */
function bytesToUnicode() {
  const bs = [];
  for (let i = 0x21; i <= 0x7e; i++) bs.push(i);
  for (let i = 0xa1; i <= 0xac; i++) bs.push(i);
  for (let i = 0xae; i <= 0xff; i++) bs.push(i);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const map = new Array(256);
  bs.forEach((b, i) => (map[b] = String.fromCodePoint(cs[i])));
  return map;
}

function tokenizerJson({ preTokenizer = null, addedTokens = [], vocab = {} }) {
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: null,
    decoder: null,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  });
}

// ---------------------------------------------------------------------------
// 1. Oniguruma classes L, N, M, S via Split(Regex, Removed)
// ---------------------------------------------------------------------------

function probeRegexClass(pattern) {
  const tok = hf.Tokenizer.fromString(
    tokenizerJson({ preTokenizer: { type: 'Split', pattern: { Regex: pattern }, behavior: 'Removed', invert: false } }),
  );
  const pre = tok.getPreTokenizer();
  const members = new Uint8Array(MAX_CP);
  for (const batch of batches(SCALARS)) {
    const kept = cpsOf(pre.preTokenizeString(str(batch)).map((p) => p[0]).join(''));
    let j = 0;
    for (const cp of batch) {
      if (j < kept.length && kept[j] === cp) j++;
      else members[cp] = 1;
    }
    if (j !== kept.length) throw new Error(`Split(${pattern}) output is not a subsequence of its input`);
  }
  return members;
}

// ---------------------------------------------------------------------------
// 2. \w of the added-token single_word check (Rust regex crate)
// ---------------------------------------------------------------------------

async function probeWord() {
  const alphabet = bytesToUnicode();
  const vocab = Object.fromEntries(alphabet.map((c, i) => [c, i]));
  const preTokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const makeTok = (content) =>
    hf.Tokenizer.fromString(
      tokenizerJson({
        preTokenizer,
        vocab,
        addedTokens: [
          { id: 256, content, single_word: true, lstrip: false, rstrip: false, normalized: false, special: true },
        ],
      }),
    );
  const members = new Uint8Array(MAX_CP);
  const encoder = new TextEncoder();
  async function run(tok, marker, list) {
    const markerByte = marker.codePointAt(0);
    for (const batch of batches(list, 16384)) {
      const ids = (await tok.encode(batch.map((cp) => String.fromCodePoint(cp) + marker + ' ').join(''))).getIds();
      let k = 0;
      for (const cp of batch) {
        for (const b of encoder.encode(String.fromCodePoint(cp))) {
          if (ids[k++] !== b) throw new Error(`word probe: unexpected ids around ${hex(cp)}`);
        }
        const t = ids[k++];
        if (t === markerByte) members[cp] = 1; // token NOT split out -> left neighbour is \w
        else if (t !== 256) throw new Error(`word probe: unexpected id ${t} after ${hex(cp)}`);
        if (ids[k++] !== 0x20) throw new Error(`word probe: lost the space after ${hex(cp)}`);
      }
      if (k !== ids.length) throw new Error('word probe: trailing ids');
    }
  }
  await run(makeTok('\u0001'), '\u0001', SCALARS.filter((cp) => cp !== 1));
  await run(makeTok('\u0002'), '\u0002', [1]);
  return members;
}

// ---------------------------------------------------------------------------
// 3. Digits pre-tokenizer (char::is_numeric)
// ---------------------------------------------------------------------------

function probeNumeric() {
  const digits = hf.digitsPreTokenizer(true);
  const members = new Uint8Array(MAX_CP);
  for (const batch of batches(SCALARS)) {
    const s = 'a' + batch.map((cp) => String.fromCodePoint(cp)).join('a') + 'a';
    for (const [piece] of digits.preTokenizeString(s)) {
      const cps = cpsOf(piece);
      // A non-numeric probed char always merges with the "a"s around it.
      if (cps.length === 1 && cps[0] !== 0x61) members[cps[0]] = 1;
    }
  }
  return members;
}

// ---------------------------------------------------------------------------
// 4. Normalization data
// ---------------------------------------------------------------------------

const nfd = hf.nfdNormalizer();
const nfc = hf.nfcNormalizer();

/** Applies `normalizer` to each string of `items` (batched with SEP). */
function normalizeEach(normalizer, items) {
  const out = [];
  for (const batch of batches(items, 32768)) {
    // U+0001 separates the items, or U+E000 (same properties) when an item
    // itself contains U+0001.
    const sep = SEPARATORS.find((c) => !batch.some((s) => s.includes(c)));
    if (sep === undefined) throw new Error('no separator is free in this batch');
    const parts = normalizer.normalizeString(batch.join(sep)).split(sep);
    if (parts.length !== batch.length) throw new Error('normalizer output lost a separator');
    out.push(...parts);
  }
  return out;
}

function pythonCandidates() {
  const code = String.raw`
import json, sys, unicodedata as u
ccc, dec = {}, {}
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF: continue
    ch = chr(cp)
    c = u.combining(ch)
    if c: ccc[cp] = c
    d = u.decomposition(ch)
    if d and not d.startswith('<'):
        dec[cp] = [int(x, 16) for x in d.split()]
json.dump({'version': u.unidata_version, 'python': sys.version.split()[0], 'ccc': ccc, 'dec': dec}, sys.stdout)
`;
  const raw = JSON.parse(execFileSync('python3', ['-c', code], { maxBuffer: 64 << 20, encoding: 'utf8' }));
  const ccc = new Map(Object.entries(raw.ccc).map(([k, v]) => [Number(k), v]));
  const dec = new Map(Object.entries(raw.dec).map(([k, v]) => [Number(k), v]));
  return { version: raw.version, python: raw.python, ccc, dec };
}

const HANGUL = { SBase: 0xac00, LBase: 0x1100, VBase: 0x1161, TBase: 0x11a7, LCount: 19, VCount: 21, TCount: 28 };
HANGUL.NCount = HANGUL.VCount * HANGUL.TCount;
HANGUL.SCount = HANGUL.LCount * HANGUL.NCount;
const isHangulSyllable = (cp) => cp >= HANGUL.SBase && cp < HANGUL.SBase + HANGUL.SCount;
function hangulDecompose(cp) {
  const s = cp - HANGUL.SBase;
  const l = HANGUL.LBase + Math.floor(s / HANGUL.NCount);
  const v = HANGUL.VBase + Math.floor((s % HANGUL.NCount) / HANGUL.TCount);
  const t = HANGUL.TBase + (s % HANGUL.TCount);
  return t === HANGUL.TBase ? [l, v] : [l, v, t];
}

function probeNormalization(py) {
  // --- full decompositions and single-code-point NFC -----------------------
  const asStrings = SCALARS.map((cp) => String.fromCodePoint(cp));
  const nfdOut = normalizeEach(nfd, asStrings);
  const nfcOut = normalizeEach(nfc, asStrings);
  const hfDecomp = new Map(); // cp -> full canonical decomposition (code points)
  const nfcChanges = new Uint8Array(MAX_CP);
  SCALARS.forEach((cp, i) => {
    if (nfdOut[i] !== asStrings[i]) hfDecomp.set(cp, cpsOf(nfdOut[i]));
    if (nfcOut[i] !== asStrings[i]) nfcChanges[cp] = 1;
  });
  log(`HF NFD decomposes ${hfDecomp.size} code points; HF NFC changes ${nfcChanges.reduce((a, b) => a + b, 0)}`);

  // Hangul: HF must agree with the algorithm the C++ side uses.
  let hangulBad = 0;
  for (let cp = HANGUL.SBase; cp < HANGUL.SBase + HANGUL.SCount; cp++) {
    const d = hfDecomp.get(cp);
    if (!d || d.join() !== hangulDecompose(cp).join() || nfcChanges[cp]) hangulBad++;
  }
  check(hangulBad === 0, `${hangulBad} Hangul syllables differ from the algorithmic (de)composition`);

  // Every HF decomposition must agree with Python's (recursively expanded and
  // canonically ordered, which is what HF NFD of the single-step parts gives).
  const decCandidates = [...hfDecomp.keys()].filter((cp) => !isHangulSyllable(cp));
  const missingPy = decCandidates.filter((cp) => !py.dec.has(cp));
  check(missingPy.length === 0, `HF decomposes code points Python does not: ${missingPy.slice(0, 10).map(hex)}`);
  const viaParts = normalizeEach(nfd, decCandidates.map((cp) => str(py.dec.get(cp) ?? [cp])));
  decCandidates.forEach((cp, i) => {
    check(viaParts[i] === str(hfDecomp.get(cp)), `HF NFD(${hex(cp)}) != HF NFD(Python decomposition)`);
  });

  // --- combining classes -----------------------------------------------------
  const plain = SCALARS.filter((cp) => !hfDecomp.has(cp) && cp !== 0x0334 && cp !== 0x0301);
  const afterA = normalizeEach(nfd, plain.map((cp) => String.fromCodePoint(cp) + '\u0334'));
  const afterB = normalizeEach(nfd, plain.map((cp) => '\u0301' + String.fromCodePoint(cp)));
  const ccc = new Uint8Array(MAX_CP);
  const hfNonStarter = new Set([0x0334, 0x0301]);
  plain.forEach((cp, i) => {
    const c = String.fromCodePoint(cp);
    const movedA = afterA[i] === '\u0334' + c; // ccc(cp) > 1
    const movedB = afterB[i] === c + '\u0301'; // 0 < ccc(cp) < 230
    if (!movedA && afterA[i] !== c + '\u0334') fail(`unexpected NFD of ${hex(cp)} U+0334: ${hexs(afterA[i])}`);
    if (!movedB && afterB[i] !== '\u0301' + c) fail(`unexpected NFD of U+0301 ${hex(cp)}: ${hexs(afterB[i])}`);
    if (movedA || movedB) hfNonStarter.add(cp);
  });
  let droppedPyNonStarters = [];
  for (const cp of SCALARS) {
    const pyc = py.ccc.get(cp) ?? 0;
    if (hfDecomp.has(cp)) {
      // Never seen by HF's reordering (always decomposed first): keep the
      // Unicode value, which is stable across versions.
      ccc[cp] = pyc;
    } else if (hfNonStarter.has(cp)) {
      if (pyc === 0) fail(`HF treats ${hex(cp)} as a non-starter but Python says ccc 0`);
      ccc[cp] = pyc;
    } else if (pyc !== 0) {
      droppedPyNonStarters.push(cp); // unknown to HF's Unicode 9 data
    }
  }
  // Exact class values: reorder every non-starter against one reference mark
  // of every class value, in both orders, and compare with a stable sort.
  const byValue = new Map();
  for (const cp of [...hfNonStarter].sort((a, b) => a - b)) if (!byValue.has(ccc[cp])) byValue.set(ccc[cp], cp);
  const refs = [...byValue.entries()].sort((a, b) => a[0] - b[0]);
  const tests = [];
  const expected = [];
  for (const m of hfNonStarter) {
    for (const [v, r] of refs) {
      if (r === m) continue;
      tests.push(str([m, r]), str([r, m]));
      expected.push(str(ccc[m] > v ? [r, m] : [m, r]), str(v > ccc[m] ? [m, r] : [r, m]));
    }
  }
  const got = normalizeEach(nfd, tests);
  let cccBad = 0;
  got.forEach((g, i) => {
    if (g !== expected[i]) {
      if (cccBad++ < 10) fail(`ccc ordering: NFD(${hexs(tests[i])}) = ${hexs(g)}, expected ${hexs(expected[i])}`);
    }
  });
  check(cccBad === 0, `${cccBad} ccc ordering checks failed`);
  log(
    `non-starters known to HF: ${hfNonStarter.size} (${refs.length} distinct classes, ${tests.length} ordering checks); ` +
      `Python non-starters unknown to HF: ${droppedPyNonStarters.length}`,
  );

  // --- compositions ------------------------------------------------------------
  const compositions = [];
  for (const cp of decCandidates) {
    if (nfcChanges[cp]) continue; // composition-excluded, singleton or non-starter decomposition
    const d = py.dec.get(cp);
    if (!d || d.length !== 2) {
      fail(`${hex(cp)} survives HF NFC but has no two-code-point canonical decomposition in Python`);
      continue;
    }
    compositions.push({ first: d[0], second: d[1], composite: cp });
  }
  const recomposed = normalizeEach(nfc, compositions.map((c) => str([c.first, c.second])));
  compositions.forEach((c, i) => {
    check(recomposed[i] === str([c.composite]), `HF NFC(${hex(c.first)} ${hex(c.second)}) != ${hex(c.composite)}`);
  });
  compositions.sort((a, b) => a.first - b.first || a.second - b.second);

  const decompositions = decCandidates.sort((a, b) => a - b).map((cp) => ({ codePoint: cp, cps: hfDecomp.get(cp) }));
  return { decompositions, hfDecomp, compositions, ccc, nfcChanges, hfNonStarter, droppedPyNonStarters };
}

// ---------------------------------------------------------------------------
// Reference NFC over the generated tables (mirrors what the C++ side does)
// ---------------------------------------------------------------------------

function makeReferenceNfc(decompMap, compositions, ccc) {
  const compose = new Map(compositions.map((c) => [c.first * MAX_CP + c.second, c.composite]));
  const { SBase, LBase, VBase, TBase, LCount, VCount, TCount, NCount, SCount } = HANGUL;
  function composePair(a, b) {
    if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount) {
      return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
    }
    if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount === 0 && b > TBase && b < TBase + TCount) {
      return a + (b - TBase);
    }
    return compose.get(a * MAX_CP + b);
  }
  return function referenceNfc(s) {
    // 1. full canonical decomposition
    const d = [];
    for (const ch of s) {
      const cp = ch.codePointAt(0);
      if (isHangulSyllable(cp)) d.push(...hangulDecompose(cp));
      else if (decompMap.has(cp)) d.push(...decompMap.get(cp));
      else d.push(cp);
    }
    // 2. canonical ordering: stable sort of each run of non-starters
    for (let i = 0; i < d.length; ) {
      if (ccc[d[i]] === 0) {
        i++;
        continue;
      }
      let j = i;
      while (j < d.length && ccc[d[j]] !== 0) j++;
      const run = d.slice(i, j).map((cp, k) => [cp, k]);
      run.sort((x, y) => ccc[x[0]] - ccc[y[0]] || x[1] - y[1]);
      run.forEach(([cp], k) => (d[i + k] = cp));
      i = j;
    }
    // 3. canonical composition
    const out = [];
    let starter = -1; // index in `out` of the last starter, -1 before the first one
    let lastClass = -1; // ccc of the last char appended after that starter; -1: none yet
    for (const cp of d) {
      const cc = ccc[cp];
      // cp may combine with the starter unless a char in between blocks it
      // (same or higher class, or any starter).
      if (starter >= 0 && (lastClass === -1 || lastClass < cc)) {
        const comp = composePair(out[starter], cp);
        if (comp !== undefined) {
          out[starter] = comp;
          continue;
        }
      }
      if (cc === 0) {
        starter = out.length;
        lastClass = -1;
      } else {
        lastClass = cc;
      }
      out.push(cp);
    }
    return str(out);
  };
}

// ---------------------------------------------------------------------------
// Seeded random strings for validation
// ---------------------------------------------------------------------------

function mulberry32(seed) {
  return function () {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function validate(tables, classOf, py) {
  const { decompositions, compositions, ccc, hfNonStarter, droppedPyNonStarters } = tables;
  const decompMap = new Map(decompositions.map((d) => [d.codePoint, d.cps]));
  const referenceNfc = makeReferenceNfc(decompMap, compositions, ccc);
  const rand = mulberry32(0x0c70_1234);
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

  const pools = {
    ascii: range(0x41, 0x5a).concat(range(0x61, 0x7a), [0x20, 0x2e]),
    firsts: [...new Set(compositions.map((c) => c.first))],
    seconds: [...new Set(compositions.map((c) => c.second))],
    precomposed: decompositions.map((d) => d.codePoint),
    marks: [...hfNonStarter],
    newMarks: droppedPyNonStarters, // marks HF's Unicode 9 data does not know
    hangulL: range(0x1100, 0x1113),
    hangulV: range(0x1161, 0x1175),
    hangulT: range(0x11a8, 0x11c2),
    hangulOdd: [0x1113, 0x115f, 0x1160, 0x1176, 0x11a7, 0x11c3, 0x3131, 0x314f],
    hangulS: range(0, 200).map(() => HANGUL.SBase + Math.floor(rand() * HANGUL.SCount)),
    any: range(0, 400).map(() => pick(SCALARS)),
  };
  const indic = [
    [0x0c15, 0x0c56, 0x0c3c],
    [0x0c15, 0x0c46, 0x0c56],
    [0x0b15, 0x0b47, 0x0b3e],
    [0x0b47, 0x0b57],
    [0x0b47, 0x0b56],
    [0x0dd9, 0x0dcf, 0x0dca],
    [0x0dd9, 0x0ddf],
    [0x1025, 0x102e],
    [0x0915, 0x093c],
    [0x0928, 0x093c],
    [0x09c7, 0x09be],
    [0x09c7, 0x09d7],
    [0x0cc6, 0x0cc2, 0x0cd5],
    [0x0cbf, 0x0cd5],
    [0x0d46, 0x0d3e],
    [0x0d47, 0x0d3e],
    [0x0bc6, 0x0bbe],
    [0x0b92, 0x0bd7],
    [0x11131, 0x11127],
    [0x1b05, 0x1b35],
    [0x0f40, 0x0fb5],
    [0x0f71, 0x0f72, 0x0f80],
  ];
  const poolNames = Object.keys(pools);
  function randomString() {
    const n = 1 + Math.floor(rand() * 12);
    const cps = [];
    while (cps.length < n) {
      if (rand() < 0.08) cps.push(...pick(indic));
      else cps.push(pick(pools[pick(poolNames)]));
    }
    return str(cps);
  }

  const fixed = [
    ['\u0C15\u0C56\u0C3C', '\u0C15\u0C56\u0C3C'],
    ['e\u0301', '\u00e9'],
    ['\u1100\u1161\u11a8', '\uac01'],
    ['a\u0328\u0301', '\u0105\u0301'],
  ];
  for (const [input, want] of fixed) {
    const h = nfc.normalizeString(input);
    check(h === want, `HF NFC(${hexs(input)}) = ${hexs(h)}, expected ${hexs(want)}`);
    const r = referenceNfc(input);
    check(r === want, `reference NFC(${hexs(input)}) = ${hexs(r)}, expected ${hexs(want)}`);
  }

  const NFC_CASES = 20000;
  const inputs = Array.from({ length: NFC_CASES }, randomString);
  // Also every precomposed char and every composition pair on its own.
  inputs.push(...decompositions.map((d) => str([d.codePoint])), ...compositions.map((c) => str([c.first, c.second])));
  const hfOut = normalizeEach(nfc, inputs);
  let mismatches = 0;
  let qFree = 0;
  let qFreeChanged = 0;
  inputs.forEach((s, i) => {
    const r = referenceNfc(s);
    if (r !== hfOut[i]) {
      if (mismatches++ < 10) fail(`NFC mismatch on ${hexs(s)}: HF ${hexs(hfOut[i])}, reference ${hexs(r)}`);
    }
    if (cpsOf(s).every((cp) => !(classOf[cp] & 64))) {
      qFree++;
      if (hfOut[i] !== s) qFreeChanged++;
    }
  });
  check(mismatches === 0, `${mismatches} of ${inputs.length} NFC comparisons mismatched`);

  // Q claim on strings drawn only from non-Q scalars.
  const nonQ = SCALARS.filter((cp) => !(classOf[cp] & 64));
  const qInputs = Array.from({ length: 20000 }, () => {
    const n = 1 + Math.floor(rand() * 16);
    return str(Array.from({ length: n }, () => pick(nonQ)));
  });
  const qOut = normalizeEach(nfc, qInputs);
  qInputs.forEach((s, i) => {
    qFree++;
    if (qOut[i] !== s) {
      if (qFreeChanged++ < 10) fail(`Q-free string changed by HF NFC: ${hexs(s)} -> ${hexs(qOut[i])}`);
    }
  });
  check(qFreeChanged === 0, `${qFreeChanged} Q-free strings were changed by NFC`);
  log(
    `validation: ${inputs.length} NFC comparisons (${mismatches} mismatches); ` +
      `${qFree} Q-free strings (${qFreeChanged} changed)`,
  );
  return { nfcCases: inputs.length, nfcMismatches: mismatches, qFreeCases: qFree, qFreeChanged };
}

// ---------------------------------------------------------------------------
// Header emission
// ---------------------------------------------------------------------------

function twoLevel(values) {
  const blocks = [];
  const seen = new Map();
  const index = [];
  for (let hi = 0; hi < MAX_CP >> 8; hi++) {
    const block = values.subarray(hi << 8, (hi + 1) << 8);
    const key = block.join(',');
    if (!seen.has(key)) {
      seen.set(key, blocks.length);
      blocks.push(Array.from(block));
    }
    index.push(seen.get(key));
  }
  return { index, blocks };
}

function rows(values, perRow, indent = '    ') {
  const out = [];
  for (let i = 0; i < values.length; i += perRow) out.push(indent + values.slice(i, i + perRow).join(',') + ',');
  return out.join('\n');
}

function emitHeader({ counts, classTable, cccTable, decompositions, compositions, pyVersion }) {
  const decompData = [];
  const decompEntries = decompositions.map((d) => {
    const offset = decompData.length;
    decompData.push(...d.cps);
    return `    {0x${d.codePoint.toString(16).toUpperCase()},${offset},${d.cps.length}},`;
  });
  if (decompData.length > 0xffff) throw new Error('decomposition data does not fit uint16 offsets');
  const h = (cp) => '0x' + cp.toString(16).toUpperCase();
  const block = (b) => `    {\n${rows(b, 32, '      ')}\n    },`;
  return `// GENERATED FILE - DO NOT EDIT BY HAND.
// Generated by scripts/generate-unicode-tables.mjs from probing tokenizers@${HF_VERSION}
// (Hugging Face tokenizers' Node binding); regenerate with \`npm run generate:unicode\`.
// Python ${pyVersion} unicodedata served only as a candidate source for combining
// classes and single-step decompositions; every entry below was confirmed against HF.
//
// Class counts over all Unicode scalar values (U+0000..U+10FFFF minus surrogates):
//   kLetter     (Oniguruma \\p{L})                    ${counts.L}
//   kNumber     (Oniguruma \\p{N})                    ${counts.N}
//   kMark       (Oniguruma \\p{M})                    ${counts.M}
//   kWhitespace (Oniguruma \\s)                       ${counts.S}
//   kWord       (Rust regex \\w, single_word check)   ${counts.W}
//   kNumeric    (Rust char::is_numeric, Digits)      ${counts.D}
//   kNfcMaybe   (NFC quick check "may change")       ${counts.Q}
//   kPunctuationOrSymbol (Oniguruma [\\p{P}\\p{S}])     ${counts.P}
//   non-starters (ccc != 0)                          ${counts.nonStarters}
//   decompositions (Hangul syllables excluded)       ${counts.decompositions}
//   compositions   (Hangul syllables excluded)       ${counts.compositions}
#pragma once

#include <cstdint>

namespace octomix::unicode {

enum ClassBit : uint8_t {
  kLetter = 1, kNumber = 2, kMark = 4, kWhitespace = 8, kWord = 16, kNumeric = 32, kNfcMaybe = 64, kPunctuationOrSymbol = 128
};

// two-level table: class of cp = kClassBlocks[kClassBlockIndex[cp >> 8]][cp & 0xFF] (cp < 0x110000; surrogates 0)
inline constexpr uint16_t kClassBlockIndex[0x1100] = {
${rows(classTable.index, 32)}
};

inline constexpr uint8_t kClassBlocks[][256] = {
${classTable.blocks.map(block).join('\n')}
};

// canonical combining class, same two-level layout
inline constexpr uint16_t kCombiningClassBlockIndex[0x1100] = {
${rows(cccTable.index, 32)}
};

inline constexpr uint8_t kCombiningClassBlocks[][256] = {
${cccTable.blocks.map(block).join('\n')}
};

// full canonical decompositions (Hangul syllables excluded), sorted by code point
struct Decomposition { uint32_t codePoint; uint16_t offset; uint16_t length; };
inline constexpr Decomposition kDecompositions[] = {
${decompEntries.join('\n')}
};
inline constexpr uint32_t kDecompositionData[] = {
${rows(decompData.map(h), 16)}
};

// primary composites, sorted by (first, second)
struct Composition { uint32_t first; uint32_t second; uint32_t composite; };
inline constexpr Composition kCompositions[] = {
${compositions.map((c) => `    {${h(c.first)},${h(c.second)},${h(c.composite)}},`).join('\n')}
};

}  // namespace octomix::unicode
`;
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

function listHash(members) {
  const hash = createHash('sha256');
  for (let cp = 0; cp < MAX_CP; cp++) if (members[cp]) hash.update(cp.toString(16) + '\n');
  return hash.digest('hex').slice(0, 16);
}

/** Lists differences between a probed class and a candidate predicate (informational). */
function diffAgainst(name, members, predicate) {
  const extra = [];
  const missing = [];
  for (const cp of SCALARS) {
    const a = members[cp] === 1;
    const b = predicate(cp);
    if (a && !b) extra.push(cp);
    if (!a && b) missing.push(cp);
  }
  const show = (l) => `${l.length}${l.length ? ` (e.g. ${l.slice(0, 6).map(hex).join(' ')})` : ''}`;
  log(`  ${name}: HF-only ${show(extra)}, candidate-only ${show(missing)}`);
}

async function main() {
  log(`probing tokenizers@${HF_VERSION} over ${SCALARS.length} scalar values`);
  const L = probeRegexClass('\\p{L}');
  const N = probeRegexClass('\\p{N}');
  const M = probeRegexClass('\\p{M}');
  const S = probeRegexClass('\\s');
  // DeepSeek-V3's pre-tokenizer uses \p{P} and \p{S} only together ([\p{P}\p{S}]), so one bit holds their union.
  const P = probeRegexClass('[\\p{P}\\p{S}]');
  log('regex classes probed');
  const W = await probeWord();
  log('\\w probed');
  const D = probeNumeric();
  log('numeric probed');

  const py = pythonCandidates();
  log(`Python ${py.python} unicodedata ${py.version}: ${py.ccc.size} non-starters, ${py.dec.size} canonical decompositions`);
  const norm = probeNormalization(py);
  log(`normalization probed: ${norm.decompositions.length} decompositions, ${norm.compositions.length} compositions`);

  // Q: NFC quick check "maybe / no"
  const Q = new Uint8Array(MAX_CP);
  for (const cp of SCALARS) if (norm.ccc[cp] !== 0 || norm.nfcChanges[cp]) Q[cp] = 1;
  for (const c of norm.compositions) Q[c.second] = 1;
  for (let cp = 0x1161; cp <= 0x1175; cp++) Q[cp] = 1;
  for (let cp = 0x11a8; cp <= 0x11c2; cp++) Q[cp] = 1;

  // Sanity checks on the classes
  const S_EXPECTED = [0x9, 0xa, 0xb, 0xc, 0xd, 0x20, 0x85, 0xa0, 0x1680]
    .concat(Array.from({ length: 11 }, (_, i) => 0x2000 + i))
    .concat([0x2028, 0x2029, 0x202f, 0x205f, 0x3000]);
  const sList = SCALARS.filter((cp) => S[cp]);
  check(sList.join() === S_EXPECTED.join(), `\\s set differs from expectation: ${sList.map(hex).join(' ')}`);
  for (const [name, set, yes, no] of [
    ['L', L, [0x41, 0x4e00, 0x20000], [0x30, 0x20, 0x301]],
    ['N', N, [0x30, 0x663, 0x2160], [0x41, 0x20]],
    ['M', M, [0x301, 0x93c], [0x41, 0x30]],
    ['W', W, [0x41, 0x5f, 0x30, 0x301, 0x4e00], [0x20, 0x2d, 0x1, 0x2e]],
    ['D', D, [0x30, 0x39, 0x663, 0xbd, 0x2160], [0x41, 0x20, 0x1]],
    ['P', P, [0x21, 0x24, 0x2b, 0x3c, 0x5f, 0x3002, 0xff01, 0x1f600], [0x41, 0x30, 0x20, 0x301, 0x1]],
  ]) {
    for (const cp of yes) check(set[cp] === 1, `${name} should contain ${hex(cp)}`);
    for (const cp of no) check(set[cp] === 0, `${name} should not contain ${hex(cp)}`);
  }

  const classOf = new Uint8Array(MAX_CP);
  for (const cp of SCALARS) {
    classOf[cp] = L[cp] * 1 | N[cp] * 2 | M[cp] * 4 | S[cp] * 8 | W[cp] * 16 | D[cp] * 32 | Q[cp] * 64 | P[cp] * 128;
  }
  const count = (a) => a.reduce((x, y) => x + y, 0);
  const counts = {
    L: count(L),
    N: count(N),
    M: count(M),
    S: count(S),
    W: count(W),
    D: count(D),
    Q: count(Q),
    P: count(P),
    nonStarters: SCALARS.filter((cp) => norm.ccc[cp] !== 0).length,
    decompositions: norm.decompositions.length,
    compositions: norm.compositions.length,
  };
  log('counts', JSON.stringify(counts));

  // Informational: how HF differs from the Unicode data Node (ICU) and Python ship.
  log(`differences against Node ${process.versions.node} (ICU Unicode ${process.versions.unicode}) regexes:`);
  const re = (r) => (cp) => r.test(String.fromCodePoint(cp));
  diffAgainst('L vs /\\p{L}/u', L, re(/^\p{L}$/u));
  diffAgainst('N vs /\\p{N}/u', N, re(/^\p{N}$/u));
  diffAgainst('M vs /\\p{M}/u', M, re(/^\p{M}$/u));
  diffAgainst('P vs /[\\p{P}\\p{S}]/u', P, re(/^[\p{P}\p{S}]$/u));
  diffAgainst('S vs /\\p{White_Space}/u', S, re(/^\p{White_Space}$/u));
  diffAgainst('W vs /[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]/u', W, re(/^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u));
  diffAgainst('D vs /\\p{N}/u', D, re(/^\p{N}$/u));

  const validation = validate(norm, classOf, py);

  if (failures.length) {
    console.error(`\n${failures.length} check(s) failed; not writing ${relative(ROOT, HEADER_PATH)}`);
    process.exit(1);
  }

  const classTable = twoLevel(classOf);
  const cccTable = twoLevel(norm.ccc);
  const header = emitHeader({
    counts,
    classTable,
    cccTable,
    decompositions: norm.decompositions,
    compositions: norm.compositions,
    pyVersion: `${py.python} (Unicode ${py.version})`,
  });
  mkdirSync(dirname(HEADER_PATH), { recursive: true });
  writeFileSync(HEADER_PATH, header);
  const summary = {
    generator: 'scripts/generate-unicode-tables.mjs',
    probed: `tokenizers@${HF_VERSION}`,
    candidateSource: `python ${py.python} unicodedata ${py.version}`,
    counts,
    pythonNonStartersUnknownToHf: norm.droppedPyNonStarters.length,
    decompositionDataLength: norm.decompositions.reduce((a, d) => a + d.cps.length, 0),
    classBlocks: classTable.blocks.length,
    combiningClassBlocks: cccTable.blocks.length,
    sha256: {
      L: listHash(L),
      N: listHash(N),
      M: listHash(M),
      S: listHash(S),
      W: listHash(W),
      D: listHash(D),
      Q: listHash(Q),
      ccc: createHash('sha256').update(norm.ccc).digest('hex').slice(0, 16),
      decompositions: createHash('sha256')
        .update(norm.decompositions.map((d) => `${d.codePoint}:${d.cps.join(' ')}`).join('\n'))
        .digest('hex')
        .slice(0, 16),
      compositions: createHash('sha256')
        .update(norm.compositions.map((c) => `${c.first} ${c.second} ${c.composite}`).join('\n'))
        .digest('hex')
        .slice(0, 16),
    },
    validation,
  };
  writeFileSync(SUMMARY_PATH, JSON.stringify(summary, null, 2) + '\n');
  log(`wrote ${relative(ROOT, HEADER_PATH)} (${(header.length / 1024).toFixed(0)} KiB) and ${relative(ROOT, SUMMARY_PATH)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
