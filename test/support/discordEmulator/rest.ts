/**
 * The REST half of the Discord emulator: routes `/api/v10/...` requests made by @discordjs/rest to
 * {@link EmulatorState}, records every request, and applies scripted faults (429/5xx/...).
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  ApplicationFlags,
  type APIApplication,
  type APIGatewayBotInfo,
  type APIGatewayInfo,
} from 'discord-api-types/v10';
import type { MessageBody, EmulatorState, UploadedFile } from './state.js';
import type { FaultHandle, FaultRule, RecordedRequest } from './types.js';
import { DiscordHttpError, errors, type DiscordErrorBody } from './util.js';

interface RouteContext {
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  files: UploadedFile[];
}

interface RouteResult {
  status: number;
  body?: unknown;
}

interface Route {
  method: string;
  pattern: RegExp;
  /** Whether `Authorization: Bot <token>` is required (interaction/webhook-token routes are not). */
  auth: boolean;
  handle(ctx: RouteContext): RouteResult;
}

interface ArmedFault {
  rule: FaultRule;
  remaining: number;
  hits: number;
}

const ok = (body: unknown): RouteResult => ({ status: 200, body });
const noContent = (): RouteResult => ({ status: 204 });

export class RestApi {
  readonly requests: RecordedRequest[] = [];
  private readonly faults: ArmedFault[] = [];
  private readonly routes: Route[];

  constructor(
    private readonly state: EmulatorState,
    private readonly gatewayUrl: () => string,
  ) {
    this.routes = this.buildRoutes();
  }

  failNext(rule: FaultRule): FaultHandle {
    const armed: ArmedFault = { rule, remaining: rule.times ?? 1, hits: 0 };
    this.faults.push(armed);
    return {
      get hits() {
        return armed.hits;
      },
      get remaining() {
        return armed.remaining;
      },
    };
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Every REST request waits this long before it is handled: a network round trip (benchmarks). */
  latencyMs = 0;

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const url = new URL(rawUrl, 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    const raw = await readBody(req);
    const query = Object.fromEntries(url.searchParams.entries());

    const prefix = '/api/v10';
    const inApi = url.pathname === prefix || url.pathname.startsWith(`${prefix}/`);
    const path = inApi ? decodePath(url.pathname.slice(prefix.length) || '/') : decodePath(url.pathname);
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    const record: RecordedRequest = { method, path, rawUrl, query, body: undefined, files: [], time: Date.now(), status: 0 };
    this.requests.push(record);

    try {
      const { body, files } = await parseBody(req.headers['content-type'], raw);
      record.body = body;
      record.files = files.map(({ data: _data, ...meta }) => meta);

      const fault = this.takeFault(method, path);
      if (fault) {
        record.injectedFault = true;
        this.sendFault(res, record, fault);
        return;
      }
      if (!inApi && method === 'GET' && this.state.attachmentFiles.has(path)) {
        await this.serveAttachment(res, record, path);
        return;
      }
      if (!inApi) {
        record.unknownRoute = true;
        throw errors.unknownRoute(method, url.pathname);
      }

      const match = this.match(method, path);
      if (match === null || match === 'method') {
        record.unknownRoute = true;
        throw match === 'method' ? errors.methodNotAllowed() : errors.unknownRoute(method, path);
      }
      if (match.route.auth && req.headers.authorization !== `Bot ${this.state.token}`) throw errors.unauthorized();
      const result = match.route.handle({ params: match.params, query, body, files });
      record.status = result.status;
      send(res, result.status, result.body);
    } catch (error) {
      const httpError =
        error instanceof DiscordHttpError
          ? error
          : new DiscordHttpError(500, { code: 0, message: `500: Emulator error: ${error instanceof Error ? error.message : String(error)}` });
      record.status = httpError.status;
      record.error = httpError.body;
      send(res, httpError.status, httpError.body);
    }
  }

  /** An attachment's bytes (a user's, or one the bot uploaded), as Discord's CDN serves them (after a scripted delay, or a scripted error status). */
  private async serveAttachment(res: ServerResponse, record: RecordedRequest, path: string): Promise<void> {
    const file = this.state.attachmentFiles.get(path)!;
    if (file.delayMs) await new Promise((resolve) => setTimeout(resolve, file.delayMs));
    record.status = file.status ?? 200;
    if (res.destroyed) return;
    if (file.status) return void res.writeHead(file.status).end();
    const data = Buffer.from(file.content ?? '');
    res.writeHead(200, { 'Content-Type': file.contentType ?? 'application/octet-stream', 'Content-Length': data.length }).end(data);
  }

  private takeFault(method: string, path: string): FaultRule | null {
    for (const armed of this.faults) {
      if (armed.remaining <= 0) continue;
      if (armed.rule.method && armed.rule.method.toUpperCase() !== method) continue;
      armed.rule.path.lastIndex = 0;
      if (!armed.rule.path.test(path)) continue;
      armed.remaining -= 1;
      armed.hits += 1;
      return armed.rule;
    }
    return null;
  }

  private sendFault(res: ServerResponse, record: RecordedRequest, rule: FaultRule): void {
    const headers: Record<string, string> = {};
    let body: DiscordErrorBody;
    if (rule.status === 429) {
      const retryAfter = rule.retryAfter ?? 0.1;
      headers['Retry-After'] = String(retryAfter);
      headers['X-RateLimit-Scope'] = rule.global ? 'global' : 'user';
      if (rule.global) headers['X-RateLimit-Global'] = 'true';
      body = rule.body ?? { message: 'You are being rate limited.', retry_after: retryAfter, global: rule.global ?? false, code: 0 };
    } else {
      body = rule.body ?? { code: 0, message: `${rule.status}: ${STATUS_CODES[rule.status] ?? 'Error'}` };
    }
    record.status = rule.status;
    record.error = body;
    send(res, rule.status, body, headers);
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | null {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      return { route, params: { ...(m.groups ?? {}) } };
    }
    return pathMatched ? 'method' : null;
  }

  private buildRoutes(): Route[] {
    const s = this.state;
    const id = '(\\d{15,21})';
    const r = (method: string, pattern: string, handle: Route['handle'], auth = true): Route => ({
      method,
      pattern: new RegExp(`^${pattern.replace(/:(\w+)/g, (_m, name: string) => `(?<${name}>${name === 'token' || name === 'emoji' ? '[^/]+' : name === 'messageRef' ? '(?:@original|\\d{15,21})' : id.slice(1, -1)})`)}$`),
      auth,
      handle,
    });
    const app = (applicationId: string) => {
      if (applicationId !== s.applicationId) {
        throw new DiscordHttpError(404, { code: 10002, message: 'Unknown Application' });
      }
    };
    const msgBody = (ctx: RouteContext) => (ctx.body ?? {}) as MessageBody;

    return [
      // gateway
      r('GET', '/gateway', (): RouteResult => ok({ url: this.gatewayUrl() } satisfies APIGatewayInfo), false),
      r('GET', '/gateway/bot', () =>
        ok({
          url: this.gatewayUrl(),
          shards: this.state.shardCount,
          session_start_limit: { total: 1000, remaining: 999, reset_after: 86_400_000, max_concurrency: 1 },
        } satisfies APIGatewayBotInfo),
      ),
      // users & application
      r('GET', '/users/@me', () => ok(s.botUser)),
      r('GET', '/users/:userId', (ctx) => {
        const user = s.users.get(ctx.params.userId!);
        if (!user) throw errors.unknownUser();
        return ok(user);
      }),
      r('POST', '/users/@me/channels', (ctx) => {
        const recipient = (ctx.body as { recipient_id?: string } | undefined)?.recipient_id;
        const user = recipient ? s.users.get(recipient) : undefined;
        if (!user) throw errors.unknownUser();
        return ok(s.dmChannelFor(user));
      }),
      r('GET', '/applications/@me', () => ok(this.application())),
      r('GET', '/oauth2/applications/@me', () => ok(this.application())),
      // application commands
      r('GET', '/applications/:appId/commands', (ctx) => (app(ctx.params.appId!), ok(s.commandList(null)))),
      r('PUT', '/applications/:appId/commands', (ctx) => (app(ctx.params.appId!), ok(s.bulkOverwriteCommands(null, ctx.body)))),
      r('POST', '/applications/:appId/commands', (ctx) => {
        app(ctx.params.appId!);
        const { command, created } = s.upsertCommand(null, ctx.body);
        return { status: created ? 201 : 200, body: command };
      }),
      r('GET', '/applications/:appId/commands/:commandId', (ctx) => {
        app(ctx.params.appId!);
        const command = s.commandList(null).find((c) => c.id === ctx.params.commandId);
        if (!command) throw errors.unknownCommand();
        return ok(command);
      }),
      r('DELETE', '/applications/:appId/commands/:commandId', (ctx) => (app(ctx.params.appId!), s.deleteCommand(null, ctx.params.commandId!), noContent())),
      r('GET', '/applications/:appId/guilds/:guildId/commands', (ctx) => (app(ctx.params.appId!), ok(s.commandList(ctx.params.guildId!)))),
      r('PUT', '/applications/:appId/guilds/:guildId/commands', (ctx) => (app(ctx.params.appId!), ok(s.bulkOverwriteCommands(ctx.params.guildId!, ctx.body)))),
      r('POST', '/applications/:appId/guilds/:guildId/commands', (ctx) => {
        app(ctx.params.appId!);
        const { command, created } = s.upsertCommand(ctx.params.guildId!, ctx.body);
        return { status: created ? 201 : 200, body: command };
      }),
      r('DELETE', '/applications/:appId/guilds/:guildId/commands/:commandId', (ctx) => {
        app(ctx.params.appId!);
        s.deleteCommand(ctx.params.guildId!, ctx.params.commandId!);
        return noContent();
      }),
      // guilds
      r('GET', '/guilds/:guildId', (ctx) => ok(s.getGuild(ctx.params.guildId!))),
      r('GET', '/guilds/:guildId/channels', (ctx) => (s.getGuild(ctx.params.guildId!), ok(s.guildChannels(ctx.params.guildId!)))),
      r('GET', '/guilds/:guildId/roles', (ctx) => ok(s.getGuild(ctx.params.guildId!).roles)),
      r('GET', '/guilds/:guildId/members/:userId', (ctx) => ok(s.getMember(ctx.params.guildId!, ctx.params.userId!))),
      // channels & messages
      r('GET', '/channels/:channelId', (ctx) => ok(s.getChannel(ctx.params.channelId!).channel)),
      r('GET', '/channels/:channelId/thread-members/:userId', (ctx) => ok(s.getThreadMember(ctx.params.channelId!, ctx.params.userId!))),
      r('GET', '/channels/:channelId/messages', (ctx) => ok(s.listMessages(ctx.params.channelId!, ctx.query))),
      r('POST', '/channels/:channelId/messages', (ctx) => ok(s.createBotMessage(ctx.params.channelId!, msgBody(ctx), ctx.files))),
      r('POST', '/channels/:channelId/messages/bulk-delete', (ctx) => {
        s.bulkDelete(ctx.params.channelId!, (ctx.body as { messages?: string[] } | undefined)?.messages ?? []);
        return noContent();
      }),
      r('GET', '/channels/:channelId/messages/:messageId', (ctx) => ok(s.getMessage(ctx.params.channelId!, ctx.params.messageId!).message)),
      r('PATCH', '/channels/:channelId/messages/:messageId', (ctx) =>
        ok(s.editMessage(ctx.params.channelId!, ctx.params.messageId!, msgBody(ctx), ctx.files, { byBot: true })),
      ),
      r('DELETE', '/channels/:channelId/messages/:messageId', (ctx) => {
        s.deleteMessage(ctx.params.channelId!, ctx.params.messageId!, { byBot: true });
        return noContent();
      }),
      r('PUT', '/channels/:channelId/messages/:messageId/reactions/:emoji/@me', (ctx) => {
        s.addReaction(ctx.params.channelId!, ctx.params.messageId!, ctx.params.emoji!, s.botUser);
        return noContent();
      }),
      r('DELETE', '/channels/:channelId/messages/:messageId/reactions/:emoji/@me', (ctx) => {
        s.removeReaction(ctx.params.channelId!, ctx.params.messageId!, ctx.params.emoji!, s.botUser.id);
        return noContent();
      }),
      r('DELETE', '/channels/:channelId/messages/:messageId/reactions/:emoji/:userId', (ctx) => {
        s.removeReaction(ctx.params.channelId!, ctx.params.messageId!, ctx.params.emoji!, ctx.params.userId!);
        return noContent();
      }),
      r('DELETE', '/channels/:channelId/messages/:messageId/reactions/:emoji', (ctx) => {
        s.removeReaction(ctx.params.channelId!, ctx.params.messageId!, ctx.params.emoji!, null);
        return noContent();
      }),
      r('DELETE', '/channels/:channelId/messages/:messageId/reactions', (ctx) => {
        s.removeReaction(ctx.params.channelId!, ctx.params.messageId!, null, null);
        return noContent();
      }),
      r('POST', '/channels/:channelId/typing', (ctx) => (s.startTyping(ctx.params.channelId!), noContent())),
      // interactions (no bot auth: the token in the path is the credential)
      r(
        'POST',
        '/interactions/:interactionId/:token/callback',
        (ctx) => {
          const withResponse = ctx.query.with_response === 'true';
          const result = s.interactionCallback(ctx.params.interactionId!, ctx.params.token!, ctx.body as never, ctx.files, withResponse);
          return result ? ok(result) : noContent();
        },
        false,
      ),
      r('POST', '/webhooks/:appId/:token', (ctx) => ok(s.executeWebhook(ctx.params.appId!, ctx.params.token!, msgBody(ctx), ctx.files)), false),
      r('GET', '/webhooks/:appId/:token/messages/:messageRef', (ctx) => ok(s.getWebhookMessage(ctx.params.appId!, ctx.params.token!, ctx.params.messageRef!)), false),
      r(
        'PATCH',
        '/webhooks/:appId/:token/messages/:messageRef',
        (ctx) => ok(s.editWebhookMessage(ctx.params.appId!, ctx.params.token!, ctx.params.messageRef!, msgBody(ctx), ctx.files)),
        false,
      ),
      r(
        'DELETE',
        '/webhooks/:appId/:token/messages/:messageRef',
        (ctx) => (s.deleteWebhookMessage(ctx.params.appId!, ctx.params.token!, ctx.params.messageRef!), noContent()),
        false,
      ),
    ];
  }

  private application(): APIApplication {
    const s = this.state;
    const flags = ApplicationFlags.GatewayPresenceLimited | ApplicationFlags.GatewayGuildMembersLimited | ApplicationFlags.GatewayMessageContentLimited;
    return {
      id: s.applicationId,
      name: s.botUser.username,
      icon: null,
      description: 'Emulated application',
      bot_public: true,
      bot_require_code_grant: false,
      bot: s.botUser,
      verify_key: '0'.repeat(64),
      flags,
      flags_new: String(flags),
      team: null,
      summary: '',
      owner: s.humanUser,
    } as APIApplication;
  }
}

function decodePath(pathname: string): string {
  return pathname
    .split('/')
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    })
    .join('/');
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function parseBody(contentType: string | undefined, raw: Buffer): Promise<{ body: unknown; files: UploadedFile[] }> {
  if (raw.length === 0) return { body: undefined, files: [] };
  const type = (contentType ?? '').toLowerCase();
  if (type.startsWith('application/json')) {
    try {
      return { body: JSON.parse(raw.toString('utf8')), files: [] };
    } catch {
      throw new DiscordHttpError(400, { code: 50109, message: 'The request body contains invalid JSON.' });
    }
  }
  if (type.startsWith('multipart/form-data')) {
    // Let undici (Node's fetch implementation) parse multipart for us.
    const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': contentType! } }).formData();
    let body: unknown;
    const files: UploadedFile[] = [];
    for (const [field, value] of form.entries()) {
      if (typeof value === 'string') {
        if (field === 'payload_json') body = JSON.parse(value);
        continue;
      }
      const data = Buffer.from(await value.arrayBuffer());
      files.push({ field, name: (value as File).name ?? field, size: data.length, contentType: value.type || 'application/octet-stream', data });
    }
    return { body, files };
  }
  return { body: raw.toString('utf8'), files: [] };
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (status === 204 || body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) });
  res.end(payload);
}
