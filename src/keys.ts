/**
 * Unknown keys are refused, never ignored: options objects, recipe mappings and protocol messages are checked
 * against the keys they take, and the error names the key, the nearest valid one (a misspelling such as
 * `worldsize` for `worldSize`), and the full list.
 */

/** Edit distance between two strings, case-insensitive (a typo usually differs in case or a letter or two). */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let previous = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[y.length];
}

/** The valid key closest to `key`, when it is close enough to be a typo of it. */
export function nearestKey(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** The message for an unknown key: `did you mean X?` when one is near, then the keys that are taken. */
export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const near = nearestKey(key, allowed);
  return `unknown key${near ? ` (did you mean ${near}?)` : ''}; expected one of ${allowed.join(', ')}`;
}

/** The own keys of `object` that are not in `allowed`. */
export function unknownKeys(object: object, allowed: readonly string[]): string[] {
  return Object.keys(object).filter((key) => !allowed.includes(key));
}
