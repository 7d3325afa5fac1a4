import type { Server } from "node:http";

/**
 * Stop an HTTP server now, ending its open connections too: `server.close()` alone waits for every connection with
 * a request in progress, and a scraper or probe polling every second keeps one busy, so a process stopping (or one
 * whose workers could not boot, under `troupe up`) never got past it.
 */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
