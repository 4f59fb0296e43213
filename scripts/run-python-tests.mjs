#!/usr/bin/env node
// `npm run test:python`: the Python package's unittest suite, run by an interpreter that has numpy, msgpack and torch.
// `python3` on PATH is often not the one the packages were installed for (pyenv or a venv before Debian's
// /usr/bin/python3), so this asks each candidate (OCTOMIX_PYTHON when set, else python3, then /usr/bin/python3) and
// fails, saying what each one lacks, when none has them all: this run exists to test with real torch.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const modules = ['numpy', 'msgpack', 'torch'];
const candidates = process.env.OCTOMIX_PYTHON ? [process.env.OCTOMIX_PYTHON] : ['python3', ...(existsSync('/usr/bin/python3') ? ['/usr/bin/python3'] : [])];
const failures = [];
let python;
for (const candidate of candidates) {
  const result = spawnSync(candidate, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
  if (result.status === 0) { python = candidate; break; }
  failures.push(`  ${candidate}: ${(result.stderr || result.error?.message || `exit ${result.status}`).trim().split('\n').pop()}`);
}
if (!python) {
  console.error(`npm run test:python needs a Python with ${modules.join(', ')}; none found:\n${failures.join('\n')}\n` +
    'Debian/Ubuntu: apt-get install python3-numpy python3-msgpack python3-torch python3-venv python3-pip; or set OCTOMIX_PYTHON.');
  process.exit(1);
}
console.log(`test:python with ${python}`);
const run = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'python/tests', '-p', 'test_*.py', '-v'], { stdio: 'inherit' });
process.exit(run.status ?? 1);
