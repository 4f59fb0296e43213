/** `octomix verify PREFIX...`: sizes, header and digest of each shard against its manifest; non-zero on a mismatch. */
import { parseFlags, UsageError } from './flags.js';
import { displayPath } from '../preprocess/inputs.js';
import { checkParts } from '../preprocess/parts.js';
import { shardPrefixes, verifyShard, type ShardManifest } from '../shards/verify.js';

const help = `usage: octomix verify PREFIX...

Checks each shard (PREFIX.bin, PREFIX.idx) against PREFIX.json: file sizes, header, index, counts, the sha256 of
the index (document lengths and boundaries) and the sha256 digest recomputed over every token. A PREFIX whose output was cut into numbered shards stands for all of them
(PREFIX_00000, PREFIX_00001, ...). Given the outputs of two or more parts of a job array (tokenize --part I/N), it
also checks their union: every part present and complete, one tokenizer and one set of text options, and no input file
in two parts. Exits 1 when any shard or the union does not verify.`;

export async function runVerify(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {}, { positionals: true });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('at least one PREFIX is required');
  let failures = 0;
  const manifests: { prefix: string; manifest: ShardManifest }[] = [];
  for (const prefix of positionals.flatMap(shardPrefixes)) {
    const result = await verifyShard(prefix);
    if (result.manifest) manifests.push({ prefix, manifest: result.manifest });
    if (result.ok) {
      console.log(`ok   ${displayPath(prefix)}: ${result.manifest!.documents.toLocaleString('en')} documents (${result.manifest!.sequences.toLocaleString('en')} non-empty), ${result.manifest!.tokens.toLocaleString('en')} tokens, sha256 ${result.manifest!.digest.value.slice(0, 16)}…`);
      for (const note of result.notes) console.log(`     note: ${note}`);
    } else {
      failures++;
      console.log(`FAIL ${displayPath(prefix)}: ${result.problems.join('; ')}`);
    }
  }
  // The outputs of a job array (--part I/N): the union of the parts, checked as a whole.
  const parts = checkParts(manifests);
  if (parts.count !== undefined) {
    if (parts.problems.length === 0) {
      console.log(`ok   parts: all ${parts.count} of ${parts.count} complete, ${parts.inputFiles.toLocaleString('en')} input files, none in two parts, one tokenizer and one set of text options`);
    } else {
      failures++;
      for (const problem of parts.problems) console.log(`FAIL parts: ${problem}`);
    }
  }
  return failures > 0 ? 1 : 0;
}
