import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BotMetrics } from './BotMetrics.js';

export interface MetricsServerOptions {
  metrics: BotMetrics;
  port: number;
  /** Default 127.0.0.1: metrics are for the operator, not the internet. */
  host?: string;
  /** True while the bot can do its work (gateway connected, model loaded): /healthz answers 200, else 503. */
  healthy(): boolean;
  logger: Logger;
}

export interface MetricsServer {
  /** The port it listens on (the one asked for, or the one given for 0). */
  readonly port: number;
  dispose(): Promise<void>;
}

/** `/metrics` (Prometheus text format) and `/healthz`, for operators; started only when METRICS_PORT is set. */
export async function startMetricsServer({ metrics, port, host = '127.0.0.1', healthy, logger }: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else if (path === '/healthz') {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'unavailable\n');
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (body) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(body),
        (error: unknown) => {
          logger.error('collecting metrics failed', { error });
          res.writeHead(500).end();
        },
      );
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') reject(new UserError(`METRICS_PORT ${port} is already in use on ${host}; choose another port or stop what is using it.`));
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') reject(new UserError(`METRICS_HOST ${host} is not an address of this machine.`));
      else reject(error);
    });
    server.listen(port, host, () => resolve());
  });
  const actualPort = (server.address() as AddressInfo).port;
  logger.info('metrics server listening', { host, port: actualPort });
  return {
    port: actualPort,
    dispose: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}
