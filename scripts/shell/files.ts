// The file reader the configuration is loaded through (core/config.ts takes it as an argument,
// so the core itself never touches the file system).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import type { FileReader } from '../core/config.js';

export const nodeFileReader: FileReader = {
  readFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
      throw e;
    }
  },
  listDir(path) {
    try {
      return readdirSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw e;
    }
  },
};

/** A file's identity and version without reading it: device, inode (a kubelet volume swaps its
 *  ..data symlink, so the path then resolves to another inode), size, and modification and change
 *  times; and its age by the wall clock. null when it does not exist. */
function signature(path: string): { sig: string; ageMs: number } | null {
  try {
    const s = statSync(path, { bigint: true });
    return { sig: `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`, ageMs: Date.now() - Number(s.mtimeNs / 1_000_000n) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/** Younger than this, a file's content is not cached: file times advance by the kernel's clock tick
 *  (milliseconds), so two same-size writes within one tick leave the same signature (git's "racily
 *  clean" entries); older, any later write gives it a later time. */
const RACY_MS = 2_000;

/** nodeFileReader for files looked at every tick: a file is read again only when its signature
 *  (stat: inode, size, times) changed or it is younger than RACY_MS, else its last content is
 *  returned; a missing file reads as null, as with nodeFileReader. `reads` counts the reads (tests). */
export function cachedFileReader(): FileReader & { reads: number } {
  const cache = new Map<string, { sig: string; text: string | null }>();
  const reader = {
    reads: 0,
    readFile(path: string): string | null {
      const before = signature(path);
      const hit = cache.get(path);
      if (before && hit && hit.sig === before.sig) return hit.text;
      cache.delete(path);
      reader.reads++;
      const text = nodeFileReader.readFile(path);
      // cached only when nothing moved between the stat and the read, and the file is old enough
      const after = before && before.ageMs >= RACY_MS ? signature(path) : null;
      if (before && after && after.sig === before.sig) cache.set(path, { sig: before.sig, text });
      return text;
    },
    listDir: (path: string) => nodeFileReader.listDir(path),
  };
  return reader;
}
