/**
 * The gateway half of the Discord emulator: a `ws` server speaking Discord gateway v10 with plain
 * JSON text frames (no compression, no ETF), with sessions that survive a dropped socket and replay
 * missed dispatches on RESUME, exactly like Discord does.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  GatewayCloseCodes,
  GatewayDispatchEvents,
  GatewayOpcodes,
  type GatewayDispatchPayload,
  type GatewayReadyDispatchData,
  type GatewayReceivePayload,
  type GatewayRequestGuildMembersData,
  type GatewaySendPayload,
} from 'discord-api-types/v10';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

/** Payload data type of the dispatch event `E`. */
export type DispatchData<E extends GatewayDispatchEvents> = Extract<GatewayDispatchPayload, { t: E }>['d'];

/** One frame seen on the gateway, kept in {@link Gateway.log}. */
export interface GatewayLogEntry {
  time: number;
  /** `in` = sent by the client, `out` = sent by the emulator, `open` / `close` = socket lifecycle. */
  direction: 'in' | 'out' | 'open' | 'close';
  connectionId: number;
  sessionId?: string;
  op?: number;
  t?: string;
  s?: number;
  /** For `open` entries: the URL path the client connected to (`/gateway` or `/gateway-resume`). */
  path?: string;
  /** For `close` entries: the close code, and who closed. */
  code?: number;
  by?: 'client' | 'emulator';
}

interface BufferedDispatch {
  s: number;
  t: GatewayDispatchEvents;
  d: unknown;
}

/**
 * One gateway session (what IDENTIFY creates and RESUME re-attaches to). Dispatches are numbered
 * per session and buffered so a resuming client gets everything after the `seq` it reports.
 */
export class GatewaySession {
  /** 32 hex chars, like Discord's session ids. */
  readonly id: string = randomBytes(16).toString('hex');
  seq = 0;
  socket: WebSocket | null = null;
  /** `ready`: socket attached; `disconnected`: resumable; `closed`: invalidated, never resumable. */
  state: 'ready' | 'disconnected' | 'closed' = 'ready';
  readonly buffer: BufferedDispatch[] = [];
  readonly identifiedAt = Date.now();
  resumes = 0;
  /** `[shard id, shard count]` from IDENTIFY; `[0, 1]` when the client sent none. */
  shard: [number, number] = [0, 1];

  constructor(
    readonly intents: number,
    readonly connectionId: number,
  ) {}

  hasIntent(bit: number): boolean {
    return (this.intents & bit) === bit;
  }

  /** Whether this session gets a guild's events (`undefined`: a DM, which only shard 0 gets), like Discord. */
  receives(guildId: string | undefined): boolean {
    const [id, count] = this.shard;
    return guildId === undefined ? id === 0 : shardOfGuild(guildId, count) === id;
  }
}

/** The shard that owns a guild: `(guild_id >> 22) % shard_count`. */
export function shardOfGuild(guildId: string, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}

export interface GatewayHooks {
  /** Builds READY for a freshly identified session. */
  buildReady(session: GatewaySession, resumeUrl: string): GatewayReadyDispatchData;
  /** Called right after READY was dispatched (the emulator sends GUILD_CREATE from here). */
  afterReady(session: GatewaySession): void;
  /** op 8 Request Guild Members. */
  onRequestGuildMembers(session: GatewaySession, data: GatewayRequestGuildMembersData): void;
}

interface Connection {
  id: number;
  ws: WebSocket;
  session: GatewaySession | null;
  resumeUrlUsed: boolean;
}

export class Gateway {
  readonly sessions = new Map<string, GatewaySession>();
  readonly log: GatewayLogEntry[] = [];
  /** Presence updates (op 3) the client sent. */
  readonly presenceUpdates: unknown[] = [];
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 1;
  private readyWaiters: Array<() => void> = [];
  private baseUrl = '';

  constructor(
    private readonly token: string,
    private readonly heartbeatIntervalMs: number,
    private readonly hooks: GatewayHooks,
  ) {}

  /** `ws://127.0.0.1:PORT/gateway` – what GET /gateway/bot hands out. */
  get url(): string {
    return `${this.baseUrl}/gateway`;
  }

  /** What READY advertises as `resume_gateway_url` (a distinct path, so tests can see it was used). */
  get resumeUrl(): string {
    return `${this.baseUrl}/gateway-resume`;
  }

  setBaseUrl(baseUrl: string): void {
    this.baseUrl = baseUrl;
  }

  /** Hook for `http.Server#on('upgrade')`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/gateway' && url.pathname !== '/gateway-resume') {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, url));
  }

  /** Sessions that still receive (or buffer) dispatches. */
  liveSessions(): GatewaySession[] {
    return [...this.sessions.values()].filter((session) => session.state !== 'closed');
  }

  /** True while at least one session has a socket attached and has had READY. */
  hasConnectedSession(): boolean {
    return this.liveSessions().some((session) => session.state === 'ready' && session.socket !== null);
  }

  /** Resolves when a session is (or next becomes) ready. */
  whenReady(): Promise<void> {
    if (this.hasConnectedSession()) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /**
   * Numbers, buffers and (if a socket is attached) sends one dispatch to one session.
   * A session that is disconnected keeps buffering; RESUME replays the buffer.
   */
  dispatch<E extends GatewayDispatchEvents>(session: GatewaySession, t: E, d: DispatchData<E>): void {
    if (session.state === 'closed') return;
    session.seq += 1;
    const entry: BufferedDispatch = { s: session.seq, t, d };
    session.buffer.push(entry);
    if (session.state === 'ready' && session.socket?.readyState === WebSocket.OPEN) {
      this.sendDispatch(session, entry);
    }
  }

  /**
   * Sends an event to every live session that owns its guild (shard 0 for DMs). `build` may tailor
   * the payload per session (intents, content stripping) or return undefined to skip that session.
   */
  broadcast<E extends GatewayDispatchEvents>(t: E, build: (session: GatewaySession) => DispatchData<E> | undefined): number {
    let delivered = 0;
    for (const session of this.liveSessions()) {
      const d = build(session);
      if (d === undefined || !session.receives((d as { guild_id?: string }).guild_id)) continue;
      this.dispatch(session, t, d as unknown as DispatchData<E>);
      delivered += 1;
    }
    return delivered;
  }

  /**
   * Closes every attached socket with `code` (default 4000, which discord.js answers with RESUME).
   * `1006` terminates the TCP connection without a close frame instead. Sessions stay resumable.
   */
  drop(code = 4000): void {
    for (const connection of [...this.connections]) {
      const session = connection.session;
      if (session && session.socket === connection.ws) {
        session.socket = null;
        session.state = 'disconnected';
      }
      this.log.push({ time: Date.now(), direction: 'close', connectionId: connection.id, sessionId: session?.id, code, by: 'emulator' });
      if (code === 1006) connection.ws.terminate();
      else connection.ws.close(code, 'Emulator dropped the connection');
      this.connections.delete(connection);
    }
  }

  /** Sends op 7 Reconnect: the client closes and RESUMEs. */
  requestReconnect(): void {
    for (const connection of this.connections) this.send(connection, { op: GatewayOpcodes.Reconnect, d: undefined, t: null, s: null });
  }

  /**
   * Sends op 9 Invalid Session. With `resumable: false` the sessions are invalidated and the
   * client re-IDENTIFYs (getting a fresh READY + GUILD_CREATE).
   */
  invalidateSessions(resumable = false): void {
    for (const connection of this.connections) {
      const session = connection.session;
      if (session) {
        // Either way the socket is no longer bound: the client answers with RESUME on the same
        // socket (resumable) or closes and IDENTIFYs on a new one.
        connection.session = null;
        if (session.socket === connection.ws) session.socket = null;
        session.state = resumable ? 'disconnected' : 'closed';
      }
      this.send(connection, { op: GatewayOpcodes.InvalidSession, d: resumable, t: null, s: null });
    }
  }

  async close(): Promise<void> {
    for (const connection of this.connections) connection.ws.terminate();
    this.connections.clear();
    for (const session of this.sessions.values()) session.state = 'closed';
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onConnection(ws: WebSocket, url: URL): void {
    const connection: Connection = {
      id: this.nextConnectionId++,
      ws,
      session: null,
      resumeUrlUsed: url.pathname === '/gateway-resume',
    };
    this.connections.add(connection);
    this.log.push({ time: Date.now(), direction: 'open', connectionId: connection.id, path: url.pathname });

    ws.on('message', (data, isBinary) => this.onMessage(connection, data, isBinary));
    ws.on('close', (code) => this.onClose(connection, code));
    ws.on('error', () => undefined);

    if (url.searchParams.get('v') !== '10') {
      ws.close(GatewayCloseCodes.InvalidAPIVersion, 'Invalid API version');
      return;
    }
    if ((url.searchParams.get('encoding') ?? 'json') !== 'json' || url.searchParams.has('compress')) {
      // The emulator only speaks uncompressed JSON.
      ws.close(GatewayCloseCodes.DecodeError, 'Emulator supports encoding=json without compression only');
      return;
    }
    this.send(connection, { op: GatewayOpcodes.Hello, d: { heartbeat_interval: this.heartbeatIntervalMs }, t: null, s: null });
  }

  private onClose(connection: Connection, code: number): void {
    if (!this.connections.delete(connection)) return; // closed by drop() / close()
    this.log.push({ time: Date.now(), direction: 'close', connectionId: connection.id, sessionId: connection.session?.id, code, by: 'client' });
    const session = connection.session;
    if (session && session.socket === connection.ws) {
      session.socket = null;
      // Like Discord: closing with 1000/1001 ends the session, anything else keeps it resumable.
      session.state = code === 1000 || code === 1001 ? 'closed' : 'disconnected';
    }
  }

  private onMessage(connection: Connection, data: RawData, isBinary: boolean): void {
    let payload: GatewaySendPayload;
    try {
      if (isBinary) throw new Error('binary frame');
      payload = JSON.parse(rawToString(data)) as GatewaySendPayload;
    } catch {
      connection.ws.close(GatewayCloseCodes.DecodeError, 'Error while decoding payload');
      return;
    }
    this.log.push({ time: Date.now(), direction: 'in', connectionId: connection.id, sessionId: connection.session?.id, op: payload.op });

    switch (payload.op) {
      case GatewayOpcodes.Heartbeat:
        this.send(connection, { op: GatewayOpcodes.HeartbeatAck, d: undefined, t: null, s: null });
        return;
      case GatewayOpcodes.Identify: {
        if (connection.session) {
          connection.ws.close(GatewayCloseCodes.AlreadyAuthenticated, 'Already authenticated');
          return;
        }
        if (payload.d.token !== this.token) {
          connection.ws.close(GatewayCloseCodes.AuthenticationFailed, 'Authentication failed');
          return;
        }
        const intents = Number(payload.d.intents);
        const [shardId, shardCount] = payload.d.shard ?? [0, 1];
        if (!(Number.isInteger(shardId) && Number.isInteger(shardCount) && shardId >= 0 && shardId < shardCount)) {
          connection.ws.close(GatewayCloseCodes.InvalidShard, 'Invalid shard');
          return;
        }
        const session = new GatewaySession(intents, connection.id);
        session.shard = [shardId, shardCount];
        session.socket = connection.ws;
        this.sessions.set(session.id, session);
        connection.session = session;
        this.dispatch(session, GatewayDispatchEvents.Ready, this.hooks.buildReady(session, this.resumeUrl));
        this.hooks.afterReady(session);
        this.notifyReady();
        return;
      }
      case GatewayOpcodes.Resume: {
        if (connection.session) {
          connection.ws.close(GatewayCloseCodes.AlreadyAuthenticated, 'Already authenticated');
          return;
        }
        const session = this.sessions.get(payload.d.session_id);
        if (payload.d.token !== this.token) {
          connection.ws.close(GatewayCloseCodes.AuthenticationFailed, 'Authentication failed');
          return;
        }
        if (!session || session.state === 'closed') {
          this.send(connection, { op: GatewayOpcodes.InvalidSession, d: false, t: null, s: null });
          return;
        }
        if (payload.d.seq > session.seq) {
          connection.ws.close(GatewayCloseCodes.InvalidSeq, 'Invalid seq');
          return;
        }
        // A resume steals the session from any socket still attached to it.
        if (session.socket && session.socket !== connection.ws) session.socket.close(4000, 'Session resumed elsewhere');
        session.socket = connection.ws;
        session.state = 'ready';
        session.resumes += 1;
        connection.session = session;
        for (const entry of session.buffer) {
          if (entry.s > payload.d.seq) this.sendDispatch(session, entry);
        }
        this.dispatch(session, GatewayDispatchEvents.Resumed, undefined);
        this.notifyReady();
        return;
      }
      case GatewayOpcodes.RequestGuildMembers:
        if (connection.session) this.hooks.onRequestGuildMembers(connection.session, payload.d);
        return;
      case GatewayOpcodes.PresenceUpdate:
        this.presenceUpdates.push(payload.d);
        return;
      case GatewayOpcodes.VoiceStateUpdate:
      case GatewayOpcodes.RequestSoundboardSounds:
      case GatewayOpcodes.RequestChannelInfo:
        return;
      default:
        connection.ws.close(GatewayCloseCodes.UnknownOpcode, 'Unknown opcode');
    }
  }

  private notifyReady(): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private sendDispatch(session: GatewaySession, entry: BufferedDispatch): void {
    const socket = session.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const connection = [...this.connections].find((c) => c.ws === socket);
    this.log.push({ time: Date.now(), direction: 'out', connectionId: connection?.id ?? -1, sessionId: session.id, op: 0, t: entry.t, s: entry.s });
    socket.send(JSON.stringify({ op: GatewayOpcodes.Dispatch, t: entry.t, s: entry.s, d: entry.d }));
  }

  private send(connection: Connection, payload: Exclude<GatewayReceivePayload, GatewayDispatchPayload>): void {
    if (connection.ws.readyState !== WebSocket.OPEN) return;
    this.log.push({ time: Date.now(), direction: 'out', connectionId: connection.id, sessionId: connection.session?.id, op: payload.op });
    connection.ws.send(JSON.stringify(payload));
  }
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
