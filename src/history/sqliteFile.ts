import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';

const SQLITE_HEADER = 'SQLite format 3\0';

/** Creates a missing folder, and refuses (untouched) a path that is not a writable SQLite file. */
export function checkDatabaseFile(filePath: string): void {
  const folder = path.dirname(path.resolve(filePath));
  try {
    fs.mkdirSync(folder, { recursive: true });
  } catch (error) {
    // A file where a folder should be (sqlite://README.md/x.sqlite), no permission, a full disk.
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'part of that path is a file, not a folder' : `it cannot be created (${code ?? (error as Error).message})`;
    throw new UserError(`Cannot use the history database ${filePath}: the folder ${folder} does not exist and ${why}. Point DATABASE_URL at a .sqlite file in a folder you can write.`);
  }
  if (!fs.existsSync(filePath)) {
    assertAccess(folder, `the folder ${folder} is not writable; fix its permissions or point DATABASE_URL elsewhere`);
    return;
  }
  if (!fs.statSync(filePath).isFile()) {
    throw new UserError(`Cannot use the history database ${filePath}: it is not a file; point DATABASE_URL at a .sqlite file.`);
  }
  const header = Buffer.alloc(16);
  const fd = fs.openSync(filePath, 'r');
  const bytesRead = fs.readSync(fd, header, 0, 16, 0);
  fs.closeSync(fd);
  if (bytesRead > 0 && header.toString('latin1', 0, bytesRead) !== SQLITE_HEADER.slice(0, bytesRead)) {
    throw new UserError(
      `Cannot use the history database ${filePath}: it is not a SQLite database (left untouched). ` +
        'Move it away or point DATABASE_URL at another file.',
    );
  }
  assertAccess(filePath, `the file ${filePath} is not writable; fix its permissions or point DATABASE_URL elsewhere`);
}

function assertAccess(target: string, message: string): void {
  try {
    fs.accessSync(target, fs.constants.W_OK);
  } catch {
    throw new UserError(`Cannot use the history database: ${message}.`);
  }
}

export function describeSqliteError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/SQLITE_BUSY|locked/i.test(message)) return `it is locked by another process (${message}); stop the other process or use another file.`;
  if (/SQLITE_NOTADB|SQLITE_CORRUPT|malformed/i.test(message)) return `it is corrupt (${message}); it was left untouched. Restore a backup or point DATABASE_URL at another file.`;
  if (/SQLITE_READONLY|SQLITE_CANTOPEN|EACCES/i.test(message)) return `it cannot be opened for writing (${message}); fix its permissions or point DATABASE_URL elsewhere.`;
  return message;
}
