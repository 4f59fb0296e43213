/**
 * The one module where CLI flags are parsed and checked. Each command declares its flags (node:util parseArgs
 * options) and reads each value through the checks below, which throw a UsageError naming the flag and the value
 * received; main.ts prints every UsageError the same way (`octomix CMD: message`, then where the help is) and exits 2,
 * whatever the command. Unknown flags, a missing value and stray positionals are usage errors too.
 */
import { parseArgs } from 'node:util';
import { parseSize } from '../io/progress.js';

/** A wrong or missing flag: the command prints it and exits 2. */
export class UsageError extends Error {}

type Options = Record<string, { type: 'string' | 'boolean'; short?: string }>;
/** The values parseArgs gives for these options: strings and booleans, absent when not given. */
export type FlagValues<T extends Options> = { [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : string } & { help?: boolean };

/**
 * parseArgs with `--help`/`-h` added and its errors (unknown flag, missing value, unexpected positional) as
 * UsageErrors.
 */
export function parseFlags<T extends Options>(args: string[], options: T, config: { positionals?: boolean } = {}): { values: FlagValues<T>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, allowPositionals: config.positionals ?? false, strict: true, options: { ...options, help: { type: 'boolean', short: 'h' } } });
    return { values: parsed.values as FlagValues<T>, positionals: parsed.positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A required flag's value. */
export function required(flag: string, value: string | undefined, what: string): string {
  if (value === undefined || value === "") throw new UsageError(`--${flag}${what ? ` ${what}` : ""} is required`);
  return value;
}

/** An integer flag in [min, max], or `fallback` when absent. Only digits are accepted (no 1e3, no 0x10, no 2.0). */
export function integerFlag(flag: string, value: string | undefined, options: { min: number; max?: number; fallback: number }): number;
export function integerFlag(flag: string, value: string | undefined, options: { min: number; max?: number }): number | undefined;
export function integerFlag(flag: string, value: string | undefined, options: { min: number; max?: number; fallback?: number }): number | undefined {
  if (value === undefined) return options.fallback;
  const number = Number(value);
  const { min, max = Number.MAX_SAFE_INTEGER } = options;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < min || number > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer >= ${min}`) : `an integer from ${min} to ${max}`;
    throw new UsageError(`--${flag} must be ${range}, received "${value}"`);
  }
  return number;
}

/** One of `choices`, or `fallback` when absent. */
export function choiceFlag<C extends string>(flag: string, value: string | undefined, choices: readonly C[], fallback: C): C;
export function choiceFlag<C extends string>(flag: string, value: string | undefined, choices: readonly C[]): C | undefined;
export function choiceFlag<C extends string>(flag: string, value: string | undefined, choices: readonly C[], fallback?: C): C | undefined {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    const list = choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]}`;
    throw new UsageError(`--${flag} must be ${list}, received "${value}"`);
  }
  return value as C;
}

/** A size such as 500M, 2Gi or 8000000 (see parseSize), or undefined when absent. */
export function sizeFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseSize(`--${flag}`, value);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A share as `10%` or `0.1`, in [0, 1]. */
export function shareFlag(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)(%?)$/.exec(value);
  const share = match ? Number(match[1]) / (match[2] ? 100 : 1) : NaN;
  if (!(share >= 0 && share <= 1)) throw new UsageError(`--${flag} must be a share like 10% or 0.1 (at most 100%), received "${value}"`);
  return share;
}

/** `I/N` with 0 <= I < N, or undefined when absent. */
export function partFlag(flag: string, value: string | undefined): { index: number; count: number } | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+)\/(\d+)$/.exec(value);
  if (!match || Number(match[2]) < 1 || Number(match[1]) >= Number(match[2])) throw new UsageError(`--${flag} must be I/N with 0 <= I < N, received "${value}"`);
  return { index: Number(match[1]), count: Number(match[2]) };
}

/** At most one of the flags given. */
export function exclusive(values: Record<string, unknown>, flags: string[]): void {
  const given = flags.filter((flag) => values[flag] !== undefined && values[flag] !== false);
  if (given.length > 1) throw new UsageError(`give ${given.map((flag) => `--${flag}`).join(' or ')}, not ${given.length === 2 ? 'both' : 'several'}`);
}
