export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFields = Record<string, unknown>;

/** A leveled, structured logger: one line per entry. Log ids, lengths and timings, never message text or tokens. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** `json`: one JSON object per line (for log collectors); `pretty`: a short line a person reads. */
export type LogFormat = 'json' | 'pretty';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/**
 * `base` fields go on every line (a shard process logs its `shard` id). Without `write`, lines go
 * to stderr, readable when it is a terminal and JSON otherwise; with `write`, JSON unless `format` says.
 */
export function createLogger(level: LogLevel, write?: (line: string) => void, base: LogFields = {}, format?: LogFormat): Logger {
  const out = write ?? ((line: string) => void process.stderr.write(line + '\n'));
  const shape = format ?? (write === undefined && process.stderr.isTTY ? 'pretty' : 'json');
  const log = (entryLevel: Exclude<LogLevel, 'silent'>) => (message: string, fields: LogFields = {}) => {
    if (RANK[entryLevel] < RANK[level]) return;
    const entry = { time: new Date().toISOString(), level: entryLevel, message, ...base, ...serializeErrors(fields) };
    // Masked as a whole line, so a URL hidden in an error message or stack is covered too.
    out(maskCredentials(shape === 'pretty' ? prettyLine(entry) : JSON.stringify(entry)));
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** `12:04:31 WARN  queue full; message refused  channelId=123 pending=64`, then an error's stack, indented. */
export function prettyLine({ time, level, message, ...fields }: { time: string; level: string; message: string } & LogFields): string {
  const stacks: string[] = [];
  const pairs = Object.entries(fields).map(([key, value]) => {
    if (isSerializedError(value)) {
      if (value.stack) stacks.push(value.stack.split('\n').slice(1).join('\n'));
      return `${key}=${quote(`${value.name}: ${value.message}`)}`;
    }
    return `${key}=${typeof value === 'string' ? quote(value) : JSON.stringify(value)}`;
  });
  const head = `${time.slice(11, 19)} ${level.toUpperCase().padEnd(5)} ${message}${pairs.length > 0 ? `  ${pairs.join(' ')}` : ''}`;
  return [head, ...stacks.filter(Boolean)].join('\n');
}

function quote(text: string): string {
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

function isSerializedError(value: unknown): value is { name: string; message: string; stack?: string } {
  return typeof value === 'object' && value !== null && 'name' in value && 'message' in value && Object.keys(value).every((key) => ['name', 'message', 'stack'].includes(key));
}

/**
 * A URL up to the last `@` of its run of text (a JSON-escaped quote stays inside the run): a
 * password may hold `@`, `/`, `?` or `#` unescaped, so the userinfo can end at any `@` but the last.
 */
const URL_TO_LAST_AT = /\b([a-z][a-z0-9+.-]*:\/\/)((?:\\"|[^\s"])*)@/gi;

/** A bearer token or an API key written as `key=…`/`"apiKey":"…"`: the value is hidden. */
const BEARER = /\b(Bearer\s+)[^\s"',;]+/gi;
const KEY_VALUE = /((?:INFERENCE_API_KEY|api[_-]?key)"?\s*[:=]\s*"?)[^\s"',;&]+/gi;


/**
 * Hides the credentials of every URL in a text, whatever its scheme: everything from `://` to the
 * last `@` before the host, so `postgresql://u:p@ss/w@host/db` becomes `postgresql://***@host/db`.
 * A run with no `:` that holds a `/` is a path with an `@` in it (`https://x/users/@me`), kept as is.
 * Bearer tokens and API keys (`Bearer …`, `INFERENCE_API_KEY=…`, `"apiKey":"…"`) lose their value too.
 * Every error and log line that may show a URL goes through it.
 */
export function maskCredentials(text: string): string {
  return text
    .replace(URL_TO_LAST_AT, (whole, scheme: string, userinfo: string) => ((!userinfo.includes(':') && userinfo.includes('/')) || PLACEHOLDER_USERINFO.test(userinfo) ? whole : `${scheme}***@`))
    .replace(BEARER, '$1***')
    .replace(KEY_VALUE, '$1***');
}

/** The help text's own example userinfo (`redis://[:password@]host`, `postgresql://user:password@host`): a shape to copy, no secret. */
const PLACEHOLDER_USERINFO = /^\[?(?:<?user>?)?:<?password>?$/;

function serializeErrors(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
  }
  return out;
}

export const silentLogger: Logger = createLogger('silent');
