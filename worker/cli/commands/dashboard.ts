import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { once } from "node:events";
import { createDashboard } from "../../console/dashboard.js";
import { closeServer } from "../../http-close.js";
import { getLogger } from "../../logging.js";
import { createBroker, createResultBackend, resultBackendFor } from "../../setup.js";
import { intOption, listOption, parse, sharedBrokerUrlOption } from "../args.js";
import { UsageError, type Command } from "../command.js";
import { durationOption } from "../duration.js";

const help = `Usage: troupe dashboard [options]

Serve the web console: every queue's depth and throughput with charts, dead letters (filter, page, show), and
requeue / delete / purge. Actions need TROUPE_DASHBOARD_TOKEN (sign in with it; scripts send it as
Authorization: Bearer); without it, or with --read-only, the dashboard only shows.

Options:
  -b, --broker URL       broker URL (default: $TROUPE_BROKER_URL)
      --host H           address to listen on (default 127.0.0.1; anything else reaches the network: put TLS in front)
      --port N           port (default 9181; 0 picks a free one)
  -Q, --queues Q[,Q...]  queues to show (default: every queue found on the broker)
      --read-only        show everything, change nothing
      --token-file PATH  read the token from a file instead of TROUPE_DASHBOARD_TOKEN (a flag would show in ps)
      --interval D       time between samples of the broker (default 2s)
      --base-path P      serve under this path (/troupe) behind a proxy that keeps the prefix`;

/** Tokens shorter than this are refused: the sign-in form is reachable by anyone who reaches the port. */
const MIN_TOKEN = 16;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

const command: Command = {
  summary: "serve the web console (queues, charts, dead letters, requeue)",
  help,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        broker: { type: "string", short: "b" },
        host: { type: "string" },
        port: { type: "string" },
        queues: { type: "string", short: "Q", multiple: true },
        "read-only": { type: "boolean" },
        "token-file": { type: "string" },
        interval: { type: "string" },
        "base-path": { type: "string" },
      },
      false,
    );
    const host = values.host ?? "127.0.0.1";
    const port = intOption(values.port, "port", 9181, 0, 65535);
    const interval = Math.max(200, durationOption(values.interval, "interval") ?? 2000);
    const basePath = values["base-path"];
    if (basePath !== undefined && !/^\/[\w\-./]*$/.test(basePath)) throw new UsageError(`--base-path must be a path like /troupe, got "${basePath}"`);
    const token = (values["token-file"] ? readFileSync(values["token-file"], "utf8") : (process.env.TROUPE_DASHBOARD_TOKEN ?? "")).trim() || undefined;
    if (token !== undefined && token.length < MIN_TOKEN) throw new UsageError(`the dashboard token must be at least ${MIN_TOKEN} characters (openssl rand -hex 16 makes one)`);
    const readOnly = values["read-only"] ?? false;
    const broker = createBroker(sharedBrokerUrlOption(values.broker, "troupe dashboard"));
    await broker.connect();
    const queues = listOption(values.queues);
    const blindSpots = broker.statsBlindSpots();
    if (queues.length === 0 && blindSpots && (await broker.listQueues()).length === 0) {
      await broker.close();
      console.error(`troupe dashboard: no queue to show: name them with -Q, or let the broker list them: ${blindSpots}`);
      return 2;
    }
    // Message pages show stored results from the backend the workers use: TROUPE_RESULTS_URL, else the broker's Redis.
    const resultsUrl = process.env.TROUPE_RESULTS_URL;
    const results = resultsUrl ? createResultBackend(resultsUrl) : resultBackendFor(broker);
    const server = createServer();
    server.listen(port, host);
    await once(server, "listening");
    const address = server.address();
    const bound = typeof address === "object" && address ? address.port : port;
    const shown = host.includes(":") ? `[${host}]` : host;
    const dashboard = createDashboard({
      broker,
      results,
      token,
      readOnly,
      queues,
      interval,
      basePath,
      // On loopback, only loopback names: a page elsewhere whose name resolves to 127.0.0.1 is refused.
      allowedHosts: LOOPBACK.has(host) ? [...LOOPBACK].map((h) => `${h.includes(":") ? `[${h}]` : h}:${bound}`) : undefined,
    });
    server.on("request", dashboard.handler);
    const actions = readOnly ? "read-only" : token ? "actions need the token" : "actions off (set TROUPE_DASHBOARD_TOKEN)";
    const url = `http://${shown}:${bound}${basePath ?? ""}/`;
    getLogger("dashboard").info("dashboard listening", { url, broker: broker.displayUrl, actions });
    console.log(`troupe dashboard: ${url} (${broker.displayUrl}; ${actions})`);
    if (!LOOPBACK.has(host)) console.error(`troupe dashboard: warning: listening on ${host}, reachable from the network: serve it behind TLS`);

    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    await once(stop.signal, "abort");
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await closeServer(server);
    await dashboard.close();
    await results?.close();
    await broker.close();
    return 0;
  },
};
export default command;
