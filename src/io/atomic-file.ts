/**
 * Whole-or-absent file writes: the data goes to PATH.tmp-PID-N, created with O_EXCL | O_NOFOLLOW (so a file or
 * symlink planted at that name, in a shared folder, is never written through), then is renamed over PATH.
 * Manifests and plan caches are written this way; a crash leaves at most a temporary file that `octomix tokenize`
 * recognises by its name and removes.
 */
import { randomInt } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}-${randomInt(1, 2 ** 47)}`;
  const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  }
}
