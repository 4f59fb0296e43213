// The job-array examples (examples/slurm-tokenize.sh, examples/k8s-tokenize-job.yaml) stay runnable: the shell is
// valid, the manifest parses as an Indexed Job, and every tokenize flag they pass is one `octomix tokenize` takes.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { packageRoot } from '../../src/native.js';

const help = spawnSync(process.execPath, [join(packageRoot, 'dist', 'cli', 'main.js'), 'tokenize', '--help'], { encoding: 'utf8' }).stdout;
const flagsOf = (text: string) => [...new Set([...text.matchAll(/(?<![\w-])--([a-z][a-z-]+)/g)].map((match) => match[1]))];

describe('job-array examples', () => {
  it('the Slurm script is valid bash and passes only flags tokenize takes', () => {
    const script = readFileSync(join(packageRoot, 'examples', 'slurm-tokenize.sh'), 'utf8');
    expect(spawnSync('bash', ['-n', join(packageRoot, 'examples', 'slurm-tokenize.sh')]).status).toBe(0);
    const command = script.slice(script.indexOf('exec npx octomix tokenize'));
    for (const flag of flagsOf(command)) expect(help, `--${flag}`).toContain(`--${flag}`);
    expect(command).toMatch(/--part "\$INDEX\/\$COUNT"/);
  });

  it('the Kubernetes manifest is an Indexed Job whose pods each take their part', () => {
    const job = parse(readFileSync(join(packageRoot, 'examples', 'k8s-tokenize-job.yaml'), 'utf8'));
    expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job', spec: { completionMode: 'Indexed' } });
    const args = job.spec.template.spec.containers[0].args.join(' ') as string;
    for (const flag of flagsOf(args)) expect(help, `--${flag}`).toContain(`--${flag}`);
    expect(args).toContain(`--part $JOB_COMPLETION_INDEX/${job.spec.completions}`);
  });
});
