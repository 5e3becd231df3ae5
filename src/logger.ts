export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFields = Record<string, unknown>;

/** A leveled, structured logger: one JSON line per entry. Log ids, lengths and timings, never message text or tokens. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** `base` fields go on every line (a shard process logs its `shard` id). */
export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line + '\n'), base: LogFields = {}): Logger {
  const log = (entryLevel: Exclude<LogLevel, 'silent'>) => (message: string, fields: LogFields = {}) => {
    if (RANK[entryLevel] < RANK[level]) return;
    // Masked as a whole line, so a URL hidden in an error message or stack is covered too.
    write(maskCredentials(JSON.stringify({ time: new Date().toISOString(), level: entryLevel, message, ...base, ...serializeErrors(fields) })));
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/**
 * Hides the credentials (`user:password@`) of every URL in a text: `postgresql://u:secret@host/db`
 * becomes `postgresql://***@host/db`. Every error and log line that may show a URL goes through it.
 */
export function maskCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'`]+@/gi, '$1***@');
}

function serializeErrors(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
  }
  return out;
}

export const silentLogger: Logger = createLogger('silent');
