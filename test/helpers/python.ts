// Which Python interpreter the tests that need one run. A machine can have several (pyenv's or a venv's `python3`
// first on PATH, Debian's `/usr/bin/python3` with python3-numpy/-msgpack/-torch), and the modules a test needs may be
// installed for only one of them, so the tests ask each candidate for the modules instead of trusting PATH:
// `OCTOMIX_PYTHON` when set (the only candidate then), else `python3` on PATH, then `/usr/bin/python3`.
// Under `npm run test:interop` (OCTOMIX_INTEROP=1) a missing interpreter is a failure, not a skip: that run exists to
// check against these tools, and CI installs them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface PythonStatus {
  /** The interpreter to run, or '' where none has the modules. */
  python: string;
  available: boolean;
  /** Why none is available (empty when one is). */
  reason: string;
}

const cache = new Map<string, PythonStatus>();

function candidates(): string[] {
  const chosen = process.env.OCTOMIX_PYTHON;
  if (chosen) return [chosen];
  return ['python3', ...(existsSync('/usr/bin/python3') ? ['/usr/bin/python3'] : [])];
}

/** The first candidate interpreter that imports every module named, and why none does. */
export function findPython(modules: string[]): PythonStatus {
  const key = modules.join(',');
  const known = cache.get(key);
  if (known) return known;
  const failures: string[] = [];
  let status: PythonStatus | undefined;
  for (const python of candidates()) {
    const result = spawnSync(python, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
    if (result.status === 0) { status = { python, available: true, reason: '' }; break; }
    failures.push(`${python}: ${(result.stderr || result.error?.message || `exit ${result.status}`).trim().split('\n').pop()}`);
  }
  status ??= { python: '', available: false, reason: `no Python with ${modules.join(', ')} here (${failures.join('; ')}); set OCTOMIX_PYTHON to one that has them` };
  if (!status.available && process.env.OCTOMIX_INTEROP === '1') {
    throw new Error(`npm run test:interop needs ${status.reason}`);
  }
  cache.set(key, status);
  return status;
}
