#!/usr/bin/env node
/**
 * The `octomix` command: dispatches to one module per subcommand. A UsageError (cli/flags.ts) from any command is
 * printed the same way and exits 2; any other error exits 1 with its message and code.
 */
import { runDoctor } from './doctor.js';
import { runEncode } from './encode.js';
import { runInspect } from './inspect.js';
import { runPlan } from './plan.js';
import { runServe } from './serve.js';
import { runTokenize } from './tokenize.js';
import { runVerify } from './verify.js';
import { UsageError } from './flags.js';

const usage = `usage: octomix <command> [options]

commands:
  doctor                         how the native addon was built, CPU/threads, CUDA driver
  encode --tokenizer PATH [TEXT] print the ids of TEXT (or stdin), one line
  encode --tokenizer PATH --decode [IDS]
                                 print the text of space/comma-separated ids (or stdin)
  tokenize --tokenizer PATH --output PREFIX INPUT...
                                 JSONL / JSONL.gz / JSONL.zst / Parquet / text to Megatron .bin/.idx shards
  inspect PREFIX...              counts, dtype, length percentiles and histogram; --tokenizer decodes documents
  verify PREFIX...               sizes, header and digest against the manifest; exit 1 on a mismatch
  plan RECIPE [--branch NAME]    tokens requested / available, epochs and first steps of a staged mixture recipe
  serve --recipe R (--socket PATH | --stdio)
                                 a DataLoader in its own process; batches in shared memory for another process

run "octomix <command> --help" for a command's options`;

const commands: Record<string, (args: string[]) => Promise<number>> = {
  doctor: runDoctor,
  encode: runEncode,
  tokenize: runTokenize,
  inspect: runInspect,
  verify: runVerify,
  plan: runPlan,
  serve: runServe,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(usage);
    return command === undefined ? 1 : 0;
  }
  if (command === '--version' || command === '-v') {
    const { readFileSync } = await import('node:fs');
    const { packageRoot } = await import('../native.js');
    console.log(JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')).version);
    return 0;
  }
  const run = commands[command];
  if (!run) {
    console.error(`octomix: unknown command "${command}"\n\n${usage}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`octomix ${command}: ${error.message}\n\nrun "octomix ${command} --help" for the options`);
    return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const code = (error as { code?: string }).code;
    console.error(`octomix: ${(error as Error).message ?? String(error)}${code ? ` [${code}]` : ''}`);
    process.exitCode = 1;
  },
);
