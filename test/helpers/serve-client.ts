// A minimal trainer-side client of `octomix serve` for tests: starts the server, speaks the framed msgpack
// protocol over its Unix socket, and reads batch fields from the shared-memory ring with plain file reads.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Packr, Unpackr } from 'msgpackr';
import { packageRoot } from '../../src/native.js';

const packer = new Packr({ useRecords: false });
const unpacker = new Unpackr({ useRecords: false });
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

const ARRAYS = { int32: Int32Array, uint8: Uint8Array, uint16: Uint16Array } as const;

export class ServeClient {
  readonly hello: Promise<Message>;
  #input: NodeJS.ReadableStream & { destroy?: () => void };
  #output: NodeJS.WritableStream;
  #buffer = Buffer.alloc(0);
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
    this.#input.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= 4 && this.#buffer.length >= 4 + this.#buffer.readUInt32LE(0)) {
        const length = this.#buffer.readUInt32LE(0);
        const message = unpacker.unpack(this.#buffer.subarray(4, 4 + length)) as Message;
        this.#buffer = this.#buffer.subarray(4 + length);
        const waiter = this.#waiting.shift();
        if (waiter) waiter(message);
        else this.#queued.push(message);
      }
    });
    this.hello = this.receive();
  }

  receive(): Promise<Message> {
    const queued = this.#queued.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  send(message: Record<string, unknown>): void {
    const body = packer.pack(message);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(body.length, 0);
    this.#output.write(Buffer.concat([header, body]));
  }

  async request(message: Record<string, unknown>): Promise<Message> {
    this.send(message);
    return this.receive();
  }

  /** Reads a field of a batch message out of the shared-memory ring. */
  async field(spec: FieldSpec): Promise<Int32Array | Uint8Array | Uint16Array> {
    if (this.#ring === undefined) this.#ring = openSync(((await this.hello).sharedMemory as { path: string }).path, 'r');
    const Type = ARRAYS[spec.dtype as keyof typeof ARRAYS];
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
