/**
 * The shard digest: sha256 over the token ids in order as little-endian int64, so a shard can be checked against
 * its manifest with nothing but hashlib and numpy (`hashlib.sha256(tokens.astype('<i8').tobytes())`).
 */
import { createHash, type Hash } from 'node:crypto';

export class TokenDigest {
  readonly #hash: Hash = createHash('sha256');
  #scratch = new Uint32Array(0);

  update(ids: ArrayLike<number>): void {
    // int64 little-endian = the id in the low 32 bits and zero above (ids are non-negative and below 2^32).
    const words = ids.length * 2;
    if (this.#scratch.length < words) this.#scratch = new Uint32Array(Math.max(words, 1 << 16));
    const scratch = this.#scratch;
    for (let i = 0; i < ids.length; i++) {
      scratch[2 * i] = Number(ids[i]);
      scratch[2 * i + 1] = 0;
    }
    this.#hash.update(new Uint8Array(scratch.buffer, 0, words * 4));
  }

  hex(): string {
    return this.#hash.digest('hex');
  }
}
