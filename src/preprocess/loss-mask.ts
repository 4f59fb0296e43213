/**
 * Loss masks: one byte per token, 1 where the token is trained on. The text is encoded whole, exactly as without a
 * mask; the mask is then read off the text's trained spans (UTF-16 ranges: a chat's assistant turns, what follows a
 * template's {@train} marker). A token is trained when any of its bytes lies in a span: byte-level BPE joins a space
 * to the word after it, so in `Answer: {@train}{answer}` the answer's first token (" Paris") starts one byte before the
 * span and must still count as the answer's. Tokens map to bytes because
 * every tokenizer octomix supports is byte-level BPE: each vocabulary entry is one character per byte (GPT-2's byte
 * alphabet), and an added token is its own text. The bytes of a text's tokens add up to its UTF-8, after the
 * tokenizer's normalizer (NFC for Qwen); a text where they do not is refused rather than masked at a guess.
 */
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Spans } from './chat-template.js';

export class LossMaskError extends Error {}

/** The UTF-8 length of each token id of `tokenizer`, built once. */
export class TokenBytes {
  readonly #lengths: Int32Array;
  readonly normalizer: 'NFC' | undefined;

  /**
   * @param tokenizerJson the parsed tokenizer.json (to check that the model is byte-level BPE, and its normalizer)
   * @throws {LossMaskError} a tokenizer that is not byte-level BPE
   */
  constructor(tokenizer: Tokenizer, tokenizerJson: Record<string, unknown>) {
    const model = tokenizerJson.model as { type?: string } | undefined;
    const json = JSON.stringify([tokenizerJson.pre_tokenizer ?? null, tokenizerJson.decoder ?? null]);
    if (model?.type !== 'BPE' || !json.includes('"ByteLevel"')) {
      throw new LossMaskError('loss masks need a byte-level BPE tokenizer (Llama-3, Qwen, GPT-2, DeepSeek-V3), where each token is a known run of bytes');
    }
    const normalizer = JSON.stringify(tokenizerJson.normalizer ?? null);
    this.normalizer = normalizer === '{"type":"NFC"}' ? 'NFC' : undefined;
    if (normalizer !== 'null' && normalizer !== '{"type":"NFC"}' && normalizer !== '{"type":"Sequence","normalizers":[]}') {
      throw new LossMaskError(`loss masks support tokenizers without a normalizer or with NFC; this one has ${normalizer.slice(0, 80)}`);
    }
    this.#lengths = new Int32Array(tokenizer.vocabSize).fill(-1);
    const added = new Map(tokenizer.specialTokens.added.map((token) => [token.id, token.content]));
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      const content = added.get(id);
      if (content !== undefined) {
        this.#lengths[id] = Buffer.byteLength(content, 'utf8');
        continue;
      }
      const token = tokenizer.idToToken(id);
      if (token !== undefined) this.#lengths[id] = token.length;  // one byte-alphabet character (one UTF-16 unit) per byte
    }
  }

  /** Bytes of token `id`; throws for an id without a token. */
  of(id: number): number {
    const length = this.#lengths[id];
    if (length === undefined || length < 0) throw new LossMaskError(`token id ${id} has no text to place in the mask`);
    return length;
  }
}

/**
 * The mask of `ids` (the encoding of `text`): 1 for each token with a byte inside one of `spans`.
 * @throws {LossMaskError} when the tokens' bytes do not add up to the (normalized) text's
 */
export function maskFromSpans(ids: Uint32Array, text: string, spans: Spans, bytes: TokenBytes): Uint8Array {
  const normalize = (part: string) => (bytes.normalizer ? part.normalize(bytes.normalizer) : part);
  const whole = normalize(text);
  const total = Buffer.byteLength(whole, 'utf8');
  // Span bounds as byte offsets into the normalized text; the normalized prefix must begin the normalized whole
  // (NFC may join a character across a bound: then the bound is not a place in the tokens' bytes).
  const bounds = spans.map((span) => span.map((at) => {
    const prefix = normalize(text.slice(0, at));
    if (!whole.startsWith(prefix)) throw new LossMaskError(`the text's normalization joins characters across a trained span's bound at character ${at}`);
    return Buffer.byteLength(prefix, 'utf8');
  }) as [number, number]);
  const mask = new Uint8Array(ids.length);
  let offset = 0;
  let span = 0;
  for (let i = 0; i < ids.length; i++) {
    const end = offset + bytes.of(ids[i]);
    while (span < bounds.length && bounds[span][1] <= offset) span++;
    // [offset, end) overlaps the first span that ends after offset, if that span starts before end.
    if (span < bounds.length && bounds[span][0] < end && bounds[span][0] < bounds[span][1]) mask[i] = 1;
    offset = end;
  }
  if (offset !== total) {
    throw new LossMaskError(`the tokens cover ${offset} bytes but the text has ${total}: this tokenizer changes the text in a way a mask cannot follow`);
  }
  return mask;
}
