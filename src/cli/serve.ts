/**
 * `octomix serve`: the command-line shell over the server (src/serve/server.ts, which holds the protocol's story):
 * flags checked here (flags.ts), a resume state read, then the server runs until its trainer leaves.
 */
import { readFileSync } from 'node:fs';
import type { LoaderState } from '../loader/data-loader.js';
import { decodeBody } from '../serve/protocol.js';
import { clearStaleSocket, serveLoader } from '../serve/server.js';
import { integerFlag, parseFlags, required, UsageError } from './flags.js';

const help = `usage: octomix serve --recipe RECIPE [--branch NAME] (--socket PATH | --stdio) [options]

Runs a DataLoader in this process and hands its batches to one trainer over a Unix socket or stdin/stdout, in
msgpack messages; the batches live in a shared-memory ring the trainer maps (python/octomix_client.py does all of
it). Exits when the trainer disconnects or sends close, on SIGTERM/SIGINT, removing the ring.

options:
  --recipe PATH            the mixture recipe (YAML or JSON)
  --branch NAME            the branch of stages that have branches
  --rank R                 this rank (default 0)
  --world-size W           ranks sharing each global batch (default 1)
  --micro-batch-size N     sequences per micro-batch (default: the recipe's, else 1)
  --prefetch N             micro-batches built ahead, the ring's slots (default 4)
  --threads N              native prefetch threads (default min(prefetch, cores))
  --device cpu|cuda:N      cpu: batches in the shared-memory ring; cuda:N: also in a device ring the trainer maps
                           through a CUDA IPC handle (throws naming the reason when the GPU path cannot run)
  --resume FILE            a state saved from a 'state' reply (JSON or msgpack) to continue from
  --cache-dir DIR          where loader plans are cached
  --socket PATH            listen on this Unix socket (printed as a JSON line on stdout once listening)
  --stdio                  talk over stdin/stdout instead of a socket
  --shm-dir DIR            where the ring file goes (default $OCTOMIX_SHM_DIR, else /dev/shm)`;

export async function runServe(args: string[]): Promise<number> {
  try {
    const { values } = parseFlags(args, {
      recipe: { type: 'string' }, branch: { type: 'string' }, rank: { type: 'string' }, 'world-size': { type: 'string' },
      'micro-batch-size': { type: 'string' }, prefetch: { type: 'string' }, threads: { type: 'string' },
      device: { type: 'string' }, resume: { type: 'string' }, 'cache-dir': { type: 'string' }, socket: { type: 'string' },
      stdio: { type: 'boolean' }, 'shm-dir': { type: 'string' },
    });
    if (values.help) {
      console.log(help);
      return 0;
    }
    return await serveFromFlags(values);
  } catch (error) {
    // The Python client waits for one stdout line: a flag it passed wrongly reaches it there, with a code.
    if (error instanceof UsageError) process.stdout.write(`${JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message: `octomix serve: ${error.message}` } })}\n`);
    throw error;
  }
}

async function serveFromFlags(values: Record<string, string | boolean | undefined>): Promise<number> {
  const recipe = required('recipe', values.recipe as string | undefined, '');
  const socket = values.socket as string | undefined;
  if ((socket !== undefined) === (values.stdio === true)) throw new UsageError('give exactly one of --socket PATH and --stdio');
  const flag = (name: string) => values[name] as string | undefined;
  const device = flag('device') ?? 'cpu';
  if (device !== 'cpu' && !/^cuda:\d+$/.test(device)) throw new UsageError(`--device must be cpu or cuda:N, received "${device}"`);
  const loader = {
    recipe, branch: flag('branch'), cacheDir: flag('cache-dir'), device: device as 'cpu' | `cuda:${number}`,
    rank: integerFlag('rank', flag('rank'), { min: 0 }), worldSize: integerFlag('world-size', flag('world-size'), { min: 1 }),
    microBatchSize: integerFlag('micro-batch-size', flag('micro-batch-size'), { min: 1 }), prefetch: integerFlag('prefetch', flag('prefetch'), { min: 1 }),
    threads: integerFlag('threads', flag('threads'), { min: 1 }),
    resume: flag('resume') !== undefined ? readState(flag('resume')!) : undefined,
  };
  if (socket !== undefined) {
    const problem = await clearStaleSocket(socket);
    if (problem) throw new UsageError(problem);
  }
  return serveLoader({ loader, socket, shmDirectory: flag('shm-dir') ?? process.env.OCTOMIX_SHM_DIR ?? '/dev/shm' });
}

/** A state saved from a 'state' reply: JSON, or msgpack as the protocol sends it. */
function readState(path: string): LoaderState {
  const bytes = readFileSync(path);
  return (bytes[0] === 0x7b ? JSON.parse(bytes.toString('utf8')) : decodeBody(bytes)) as LoaderState;
}
