// The one error table: every code the addon raises (native/common/status.h, exported as statusCodes) has exactly
// one translation in src/errors.ts, and each translation gives the public class users branch on, by code.
import { describe, expect, it } from 'vitest';
import { fromNative, TRANSLATED_NATIVE_CODES } from '../src/errors.js';
import { DeviceUnavailableError, LoaderError, OctomixError, ShardFormatError, ShardWriteError, TokenizerLoadError, UnsupportedTokenizerError } from '../src/index.js';
import { loadAddon } from '../src/native.js';

const nativeError = (code: string, message = 'what went wrong') => Object.assign(new Error(message), { code });

describe('the native error table', () => {
  it('translates every code the addon raises, and no code the addon does not have', () => {
    expect([...TRANSLATED_NATIVE_CODES].sort()).toEqual([...loadAddon().statusCodes].sort());
  });

  it.each([
    ['INTERNAL', OctomixError], ['TOKENIZER_INVALID', TokenizerLoadError], ['TOKENIZER_UNSUPPORTED', UnsupportedTokenizerError],
    ['SHARD_FORMAT', ShardFormatError], ['SHARD_IO', ShardWriteError], ['SHARD_CLOSED', OctomixError], ['SCHEDULE_INVALID', OctomixError],
    ['DEVICE_UNAVAILABLE', DeviceUnavailableError], ['LOADER_BUFFERS_HELD', LoaderError], ['LOADER_BUSY', LoaderError],
    ['LOADER_FAILED', LoaderError], ['LOADER_SHARED_MEMORY', LoaderError],
  ] as const)('%s becomes a %s carrying a stable code', (code, errorClass) => {
    const translated = fromNative(nativeError(code), { prefix: 'out/web', source: 'tokenizer.json' }) as OctomixError;
    expect(translated).toBeInstanceOf(errorClass);
    expect(translated).toBeInstanceOf(OctomixError);
    expect(typeof translated.code).toBe('string');
    if (code.startsWith('LOADER_') || code === 'INTERNAL' || code === 'SHARD_CLOSED' || code === 'SCHEDULE_INVALID' || code === 'SHARD_FORMAT' || code === 'DEVICE_UNAVAILABLE') expect(translated.code).toBe(code);
    expect(translated.message).toContain('what went wrong');
  });

  it('SHARD_ID is an argument error (a token id that does not fit the dtype), naming the shard', () => {
    const translated = fromNative(nativeError('SHARD_ID', 'token id 70000 does not fit dtype uint16'), { prefix: 'out/web' });
    expect(translated).toBeInstanceOf(RangeError);
    expect((translated as Error).message).toBe('out/web: token id 70000 does not fit dtype uint16');
  });

  it('is chosen by code only: a message that looks like another code changes nothing, and uncoded errors pass through', () => {
    expect(fromNative(nativeError('SHARD_IO', 'token id 5 does not fit dtype uint8'))).toBeInstanceOf(ShardWriteError);
    const plain = new TypeError('ids must be a Uint32Array');
    expect(fromNative(plain)).toBe(plain);
    const unknown = nativeError('NOT_A_CODE');
    expect(fromNative(unknown)).toBe(unknown);
  });
});
