// An HTTP proxy in front of a REAL inference server that can answer one request with a fault the real server cannot be
// made to show on demand: a 429/503 with Retry-After, or a streamed reply that stops sending (stalls) mid-way. Every
// other request passes through unchanged, so the bot still talks to the real llama-server.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** What a rule matches: the request's method, path and parsed JSON body (undefined when it has none). */
export type RequestMatch = (request: { method: string; path: string; body: Record<string, unknown> | undefined }) => boolean;

/** Answer with this status and headers (e.g. 429 with Retry-After), without asking the server. */
interface Refusal {
  kind: 'refuse';
  status: number;
  headers: Record<string, string>;
  body: string;
}
/** Pass the first `afterBytes` bytes of the server's answer through, then send nothing more (the server's request is dropped). */
interface Stall {
  kind: 'stall';
  afterBytes: number;
}

interface Rule {
  match: RequestMatch;
  fault: Refusal | Stall;
  remaining: number;
}

/** What passed through, for assertions: each request's path, when it came, and what the proxy did with it. */
export interface ProxiedRequest {
  path: string;
  at: number;
  stream: boolean;
  outcome: 'passed' | 'refused' | 'stalled';
}

/** A streamed /completion request (a reply). */
export const streamedCompletion: RequestMatch = ({ method, path, body }) => method === 'POST' && /\/completions?$/.test(path) && body?.stream === true;

export class FaultyProxy {
  readonly requests: ProxiedRequest[] = [];
  private readonly rules: Rule[] = [];
  private readonly open = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    private readonly target: URL,
  ) {}

  /** Listens on 127.0.0.1 (a free port) and forwards to `targetUrl`. */
  static async start(targetUrl: string): Promise<FaultyProxy> {
    let proxy!: FaultyProxy;
    const server = createServer((req, res) => void proxy.handle(req, res));
    proxy = new FaultyProxy(server, new URL(targetUrl));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    const address = this.server.address() as { port: number };
    return `http://127.0.0.1:${address.port}`;
  }

  /** The next `times` matching requests get this status (default 429) and headers instead of the server's answer. */
  refuse(match: RequestMatch, { status = 429, headers = {}, times = 1 }: { status?: number; headers?: Record<string, string>; times?: number } = {}): void {
    const body = JSON.stringify({ error: { code: status, message: status === 429 ? 'too many requests' : 'unavailable', type: 'unavailable_error' } });
    this.rules.push({ match, fault: { kind: 'refuse', status, headers, body }, remaining: times });
  }

  /** The next matching request's answer stops after `afterBytes` bytes and the connection stays open, silent. */
  stall(match: RequestMatch, afterBytes: number): void {
    this.rules.push({ match, fault: { kind: 'stall', afterBytes }, remaining: 1 });
  }

  async stop(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    let body: Record<string, unknown> | undefined;
    try {
      body = raw.length > 0 ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : undefined;
    } catch {
      body = undefined;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const seen = { method: req.method ?? 'GET', path, body };
    const rule = this.rules.find((candidate) => candidate.remaining > 0 && candidate.match(seen));
    if (rule) rule.remaining--;
    const record: ProxiedRequest = { path, at: Date.now(), stream: body?.stream === true, outcome: 'passed' };
    this.requests.push(record);

    if (rule?.fault.kind === 'refuse') {
      record.outcome = 'refused';
      res.writeHead(rule.fault.status, { 'Content-Type': 'application/json', ...rule.fault.headers });
      res.end(rule.fault.body);
      return;
    }
    const stall = rule?.fault.kind === 'stall' ? rule.fault : undefined;
    const upstream = httpRequest(
      new URL(req.url ?? '/', this.target),
      { method: req.method, headers: { ...req.headers, host: this.target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (!stall) {
          answer.pipe(res);
          return;
        }
        record.outcome = 'stalled';
        this.open.add(res);
        res.once('close', () => this.open.delete(res));
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= stall.afterBytes) {
            // Enough: the server is told to stop (its slot frees), the client hears nothing more.
            answer.destroy();
            upstream.destroy();
            return;
          }
          const part = chunk.subarray(0, stall.afterBytes - sent);
          sent += part.length;
          res.write(part);
        });
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      if (!stall) res.end();
    });
    // The client went away (it gave up): drop the server's request too.
    res.once('close', () => upstream.destroy());
    upstream.end(raw);
  }
}
