// The file reader the configuration is loaded through (core/config.ts takes it as an argument,
// so the core itself never touches the file system).
import { readFileSync, readdirSync } from 'node:fs';
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
