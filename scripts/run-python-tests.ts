/**
 * `npm run test:python`: the Python package's unittest suite, run by an interpreter that has numpy, msgpack and torch,
 * found the way every test finds its Python (test/helpers/python.ts). Fails, saying what each candidate lacks, when
 * none has them all: this run exists to test with real torch.
 */
import { spawnSync } from 'node:child_process';
import { findPython } from '../test/helpers/python.js';

const { python, available, reason } = findPython(['numpy', 'msgpack', 'torch']);
if (!available) {
  console.error(`npm run test:python needs ${reason}\n` +
    'Debian/Ubuntu: apt-get install python3-numpy python3-msgpack python3-torch python3-venv python3-pip; or set OCTOMIX_PYTHON.');
  process.exit(1);
}
console.log(`test:python with ${python}`);
const run = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'python/tests', '-p', 'test_*.py', '-v'], { stdio: 'inherit' });
process.exit(run.status ?? 1);
