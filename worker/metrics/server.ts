import type { Server } from "node:http";
import { isMainThread } from "node:worker_threads";
import { TroupeError } from "../errors.js";
import { closeServer } from "../http-close.js";
import { nodeCluster, nodeHttp } from "../lazy.js";
import { getLogger } from "../logging.js";
import { getMetricsRegistry, promClient } from "./metrics.js";

export const DEFAULT_METRICS_PORT = 9191;
const log = getLogger("metrics");

/** The exporter port from TROUPE_METRICS_PORT: 9191 by default, undefined when "0" or "off" disables it. */
export function metricsPortFromEnv(value = process.env.TROUPE_METRICS_PORT): number | undefined {
  if (value === undefined || value === "") return DEFAULT_METRICS_PORT;
  if (value === "0" || value.toLowerCase() === "off") return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new TroupeError(`TROUPE_METRICS_PORT must be a port number, "0" or "off"; got "${value}"`);
  return port;
}

export interface MetricsServerOptions {
  port: number;
  /** Bind address (default TROUPE_METRICS_HOST, else 0.0.0.0). */
  host?: string;
  /** Aggregate the metrics of every cluster child (the `--processes N` primary) instead of this process's own. */
  cluster?: boolean;
}

/**
 * Serve `/metrics` in the Prometheus text format (any other path too, as Dramatiq's exporter) and `/healthz` for
 * liveness. Resolves once listening.
 */
export async function startMetricsServer({ port, host = process.env.TROUPE_METRICS_HOST || "0.0.0.0", cluster: aggregate = false }: MetricsServerOptions): Promise<Server> {
  const registry = getMetricsRegistry();
  const aggregator = aggregate ? new (promClient().AggregatorRegistry)() : undefined;
  const render = aggregator ? () => aggregator.clusterMetrics() : () => registry.metrics();
  const contentType = registry.contentType;
  const server = nodeHttp().createServer((req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    render().then(
      (body) => res.writeHead(200, { "content-type": contentType }).end(body),
      (err: Error) => {
        log.error("could not render metrics", { err });
        res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  log.info("metrics endpoint listening", { host, port: (server.address() as { port: number }).port, aggregated: aggregate });
  return server;
}

/** In a cluster child, answer the primary's metric requests with this process's registry. */
export function reportToClusterPrimary(): void {
  if (!nodeCluster().isWorker || !isMainThread) return;
  const { AggregatorRegistry } = promClient();
  AggregatorRegistry.setRegistries([getMetricsRegistry()]);
  // Constructing one installs prom-client's listener for the primary's requests.
  new AggregatorRegistry();
}

/**
 * The metrics endpoint of a `troupe worker` process: a cluster child reports to its primary; a process on its own
 * (the memory broker) or the primary (`aggregate`) serves TROUPE_METRICS_PORT. A port that cannot be bound is
 * logged, not fatal: processing matters more than metrics. Returns a function that closes what was started.
 */
export async function startWorkerMetrics({ aggregate = false }: { aggregate?: boolean } = {}): Promise<() => Promise<void>> {
  // Children inherit the primary's environment: with metrics off nobody will ask a child for its registry, so it
  // need not load prom-client at boot to answer.
  const port = metricsPortFromEnv();
  if (port === undefined) return async () => undefined;
  if (nodeCluster().isWorker) {
    reportToClusterPrimary();
    return async () => undefined;
  }
  try {
    const server = await startMetricsServer({ port, cluster: aggregate });
    return () => closeServer(server);
  } catch (err) {
    log.error("could not start the metrics endpoint; running without it", { port, err });
    return async () => undefined;
  }
}
