// An in-memory FileReader for the config tests: files by absolute path; directories are implied
// by the paths.
import type { FileReader } from '../../scripts/core/config.js';

export function memFiles(files: Record<string, string>): FileReader {
  return {
    readFile: (p) => (Object.hasOwn(files, p) ? (files[p] as string) : null),
    listDir: (p) => {
      const prefix = p.endsWith('/') ? p : p + '/';
      const names = new Set<string>();
      for (const f of Object.keys(files)) if (f.startsWith(prefix)) names.add(f.slice(prefix.length).split('/')[0] as string);
      return names.size ? [...names] : null;
    },
  };
}
