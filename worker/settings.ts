/**
 * Every knob of a worker from outside the code, in one table: the `troupe worker` flags and the environment
 * variables Troupe reads or sets. The modules that read them keep their own parsing; this table is what
 * test/unit/settings.test.ts holds them to — each variable the source names and each flag `troupe worker --help`
 * prints must be declared here, and each declared one must be documented in README.md or docs/.
 */
import { supportedSchemes, type ServiceRole } from "./setup.js";

/** The schemes a URL setting takes, from the composition root's table, so that a new backend is listed here by itself. */
const schemes = (role: ServiceRole) => supportedSchemes(role).join(", ");
export interface Setting {
  /** `troupe worker` flag (long form, without dashes). */
  flag?: string;
  /** Environment variable. */
  env?: string;
  /** The default, as documented. */
  default: string;
  /** What it sets. */
  doc: string;
  /** Set by Troupe itself for the processes it starts, never by hand. */
  internal?: true;
}

export const SETTINGS: readonly Setting[] = [
  { flag: "broker", env: "TROUPE_BROKER_URL", default: "memory://", doc: `broker URL: ${schemes("broker")}` },
  { env: "TROUPE_RESULTS_URL", default: "the broker's Redis, or memory on the memory broker", doc: `results backend URL: ${schemes("results")}` },
  { env: "TROUPE_RATE_LIMITER_URL", default: "the broker's Redis, else memory", doc: `rate-limiter and barrier backend URL: ${schemes("rate limiter")}` },
  { flag: "processes", default: "CPU count / threads, rounded up (1 on the memory broker)", doc: "worker processes under one supervisor; one per core only pays once one process's threads cannot cover the cores (docs/performance.md)" },
  { flag: "threads", default: "8", doc: "worker threads per process" },
  { flag: "concurrency", default: "1", doc: "messages one thread runs at once (async actors)" },
  { flag: "queues", default: "every queue of the declared actors", doc: "queues to consume" },
  { flag: "prefetch", default: "threads × (2 × concurrency + lookahead), + 64 with lookahead", doc: "messages fetched ahead per queue" },
  { flag: "lookahead", default: "3", doc: "messages sent to each thread ahead of those it runs (0 = strict priority order)" },
  { flag: "shutdown-timeout", default: "600 s", doc: "time running messages get on SIGTERM before they are requeued" },
  { flag: "path", default: "none", doc: "more folders to look for actor modules in (Dramatiq's --path)" },
  { flag: "watch", default: "off", doc: "reload the worker processes when a watched file changes (development)" },
  { flag: "watch-include", default: "**/*.{ts,mts,cts,js,mjs,cjs,json}", doc: "files whose change reloads, with --watch" },
  { flag: "watch-exclude", default: "**/node_modules/**, **/.git/**", doc: "files whose change does not reload, with --watch (added to the defaults)" },
  { flag: "watch-poll", default: "off", doc: "poll for changes instead of inotify, with --watch" },
  { flag: "watch-boot-timeout", default: "60", doc: "seconds a reload's new processes get to boot before the reload is abandoned, with --watch" },
  { flag: "pid-file", default: "none", doc: "file the supervisor writes its pid to (exit 4 when it names a running process)" },
  { flag: "log-file", env: "TROUPE_LOG_FILE", default: "stderr", doc: "file the log lines are appended to" },
  { flag: "verbose", default: "off", doc: "log at debug level (TROUPE_LOG_LEVEL=debug)" },
  { flag: "version", default: "-", doc: "print the version and exit" },
  { env: "TROUPE_LOG_LEVEL", default: "info", doc: "debug, info, warn, error or critical" },
  { env: "TROUPE_METRICS_PORT", default: "9191", doc: "port of /metrics and /healthz (0 = off)" },
  { env: "TROUPE_METRICS_HOST", default: "0.0.0.0", doc: "bind address of the metrics server" },
  { env: "TROUPE_ACTOR_OVERRIDES", default: "none", doc: "JSON/YAML file of actor option overrides, reloaded when it changes" },
  { env: "TROUPE_REDIS_NAMESPACE", default: "dramatiq", doc: "Redis key prefix shared with Python peers" },
  { env: "TROUPE_REDIS_HEARTBEAT_TIMEOUT", default: "60000 ms", doc: "silence after which a Redis worker's messages are recovered" },
  { env: "TROUPE_REDIS_DEAD_MESSAGE_TTL", default: "7 days", doc: "how long Redis dead letters are kept (ms)" },
  { env: "TROUPE_REDIS_SENTINELS", default: "none", doc: "Sentinel host:port list; the URL then gives password and db" },
  { env: "TROUPE_REDIS_SENTINEL_NAME", default: "mymaster", doc: "Sentinel master name" },
  { env: "TROUPE_RABBITMQ_MAX_PRIORITY", default: "none", doc: "x-max-priority of declared RabbitMQ queues (1..255)" },
  { env: "TROUPE_RABBITMQ_QUEUE_TYPE", default: "classic", doc: "RabbitMQ queue type Troupe declares: classic (Dramatiq's) or quorum (replicated)" },
  { env: "TROUPE_RABBITMQ_DELIVERY_LIMIT", default: "none", doc: "x-delivery-limit of quorum queues: deliveries before a message is dead-lettered" },
  { env: "TROUPE_RABBITMQ_MANAGEMENT_URL", default: "none", doc: "RabbitMQ management API URL, for in-flight counts and the queue list" },
  { env: "TROUPE_DASHBOARD_TOKEN", default: "none (dashboard actions off)", doc: "token that unlocks the dashboard's requeue / delete / purge (16+ characters)" },
  { env: "TROUPE_PROCESS_INDEX", default: "set by the supervisor", doc: "slot of a worker process under `--processes`", internal: true },
  { env: "TROUPE_POD_NAME", default: "set by the operator", doc: "the worker pod's name (Downward API)", internal: true },
];
