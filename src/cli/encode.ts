/** `octomix encode`: ids of a text (or the text of ids with --decode), for checking a tokenizer by hand. */
import { choiceFlag, parseFlags, required } from './flags.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';

const help = `usage: octomix encode --tokenizer PATH [options] [TEXT]

Prints the ids of TEXT (or of stdin when TEXT is absent) on one line, separated by spaces.

options:
  --tokenizer PATH        tokenizer.json to use (required)
  --decode                read ids (space or comma separated) and print their text instead
  --no-special            encode: do not add the template's special tokens (BOS); decode: skip special tokens
  --backend auto|native|js  which implementation to use (default auto)`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runEncode(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    tokenizer: { type: 'string', short: 't' }, decode: { type: 'boolean', short: 'd' }, 'no-special': { type: 'boolean' }, backend: { type: 'string' },
  }, { positionals: true });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const path = required('tokenizer', values.tokenizer, 'PATH');
  const backend = choiceFlag('backend', values.backend, ['auto', 'native', 'js'] as const, 'auto');
  const tokenizer = await Tokenizer.fromFile(path, { backend });
  const input = positionals.length > 0 ? positionals.join(' ') : await readStdin();
  if (values.decode) {
    const fields = input.split(/[\s,]+/).filter((field) => field.length > 0);
    const ids = fields.map((field, index) => {
      if (!/^\d+$/.test(field)) throw new RangeError(`id ${index} is not a non-negative integer: "${field}"`);
      return Number(field);
    });
    process.stdout.write(`${tokenizer.decode(ids, { skipSpecialTokens: values['no-special'] ?? false })}\n`);
    return 0;
  }
  const ids = tokenizer.encode(input, { addSpecialTokens: !(values['no-special'] ?? false) });
  process.stdout.write(`${Array.from(ids).join(' ')}\n`);
  return 0;
}
