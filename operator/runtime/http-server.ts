import http from "node:http";
import type { Registry } from "prom-client";

export interface HealthSource {
  /** Liveness: false when the process should be restarted (a controller loop died). */
  healthy(): boolean;
  /** Readiness: informers synced (or standing by as a non-leader, which is ready to take over). */
  ready(): boolean;
}

/** `/metrics`, `/healthz` and `/readyz` on one port. */
export async function startHttpServer(port: number, host: string, registry: Registry, health: HealthSource): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(err.message);
        },
      );
      return;
    }
    if (path === "/healthz" || path === "/readyz") {
      const ok = path === "/healthz" ? health.healthy() : health.ready();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
      res.end(ok ? "ok" : "not ok");
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
