// A minimal trainer-side client of `octomix serve` for tests: starts the server, speaks the framed msgpack
// protocol over its Unix socket, and reads batch fields from the shared-memory ring with plain file reads.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FIELD_ARRAYS } from '../../src/loader/batch-layout.js';
import { decodeBody, encodeFrame, frameReader, MAX_REPLY_BYTES } from '../../src/serve/protocol.js';
import { packageRoot } from '../../src/native.js';

export const cli = join(packageRoot, 'dist', 'cli', 'main.js');

export interface Served {
  process: ChildProcess;
  ready: { socket: string; sharedMemory: string; pid: number };
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startServer(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  const child = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    void exited.then(({ code }) => reject(new Error(`octomix serve exited (${code}) before listening: ${stderr}`)));
  });
  return { process: child, ready: JSON.parse(line), stderr: () => stderr, exited };
}

export type FieldSpec = { offset: number; dtype: string; shape: number[] };
export type Message = Record<string, unknown> & { type: string };

export class ServeClient {
  readonly hello: Promise<Message>;
  #input: NodeJS.ReadableStream & { destroy?: () => void };
  #output: NodeJS.WritableStream;
  #waiting: ((message: Message) => void)[] = [];
  #queued: Message[] = [];
  #ring: number | undefined;

  /** Over a Unix socket, or over a server's stdout/stdin (`--stdio`). */
  constructor(transport: string | { input: NodeJS.ReadableStream; output: NodeJS.WritableStream }) {
    if (typeof transport === 'string') {
      const socket: Socket = connect(transport);
      this.#input = socket;
      this.#output = socket;
    } else {
      this.#input = transport.input;
      this.#output = transport.output;
    }
    this.#input.on('data', frameReader(MAX_REPLY_BYTES, (body) => {
      const message = decodeBody(body) as Message;
      const waiter = this.#waiting.shift();
      if (waiter) waiter(message);
      else this.#queued.push(message);
    }, (length) => { throw new Error(`a reply frame of ${length} bytes`); }));
    this.hello = this.receive();
  }

  receive(): Promise<Message> {
    const queued = this.#queued.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  send(message: Record<string, unknown>): void {
    this.#output.write(encodeFrame(message));
  }

  /** Raw bytes, framed or not (protocol tests). */
  write(bytes: Uint8Array): void {
    this.#output.write(bytes);
  }

  async request(message: Record<string, unknown>): Promise<Message> {
    this.send(message);
    return this.receive();
  }

  /** Reads a field of a batch message out of the shared-memory ring. */
  async field(spec: FieldSpec): Promise<Int32Array | Uint8Array | Uint16Array | Float64Array> {
    if (this.#ring === undefined) this.#ring = openSync(((await this.hello).sharedMemory as { path: string }).path, 'r');
    const Type = FIELD_ARRAYS[spec.dtype as keyof typeof FIELD_ARRAYS];
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = Buffer.alloc(count * Type.BYTES_PER_ELEMENT);
    readSync(this.#ring, bytes, 0, bytes.length, spec.offset);
    return new Type(bytes.buffer, bytes.byteOffset, count);
  }

  destroy(): void {
    if (this.#ring !== undefined) closeSync(this.#ring);
    this.#input.destroy?.();
  }
}
