/** Troupe: background tasks for TypeScript, wire-compatible with Python's Dramatiq. */
export { actor, Actor, type ActorFn } from "./actor.js";
export { Message, type MessageData, type MessageOptions, type GetResultOptions } from "./message.js";
export type { ActorOptions, SendOptions, WireOptions, ErrorMatcher, ActorRef } from "./options.js";
export { Broker, type Consumer, type ConsumeOptions, type QueueStats, type DeadLetter, type EnqueueOptions, type BrokerOptions } from "./broker.js";
export { MemoryBroker } from "./brokers/memory.js";
export { RedisBroker, type RedisBrokerOptions } from "./brokers/redis.js";
export { RedisResultBackend, type RedisResultBackendOptions } from "./results/redis.js";
export { RedisRateLimiterBackend, type RedisRateLimiterBackendOptions } from "./rate-limits/redis.js";
export { MemcachedResultBackend, type MemcachedResultBackendOptions } from "./results/memcached.js";
export { MemcachedRateLimiterBackend, type MemcachedRateLimiterBackendOptions } from "./rate-limits/memcached.js";
export { RabbitmqBroker, type RabbitmqBrokerOptions } from "./brokers/rabbitmq.js";
export {
  createBroker,
  createResultBackend,
  createRateLimiterBackend,
  resultBackendFor,
  rateLimiterBackendFor,
  parseServiceUrl,
  supportedSchemes,
  DEFAULT_BROKER_URL,
  getBroker,
  setBroker,
  getResultBackend,
  setResultBackend,
  getRateLimiterBackend,
  setRateLimiterBackend,
  closeBackends,
  type ServiceRole,
} from "./setup.js";
export { MessageProxy } from "./proxy.js";
export type { Middleware, ProcessOutcome, WorkerInfo } from "./middleware/middleware.js";
export { defaultMiddleware } from "./middleware/defaults.js";
export { ActorRegistry, defaultRegistry } from "./registry.js";
export { ResultBackend, type ResultBackendOptions } from "./results/backend.js";
export { MemoryResultBackend } from "./results/memory.js";
export type { RateLimiterBackend } from "./rate-limits/backend.js";
export { getCurrentMessage, getAbortSignal, isShuttingDown, onShutdown, type ActorContext } from "./runtime/context.js";
export { Worker, defaultPrefetch, type WorkerOptions } from "./runtime/worker.js";
export { encodeJson, decodeJson, type JsonValue } from "./encoder.js";
export { ChurnMap, ChurnSet } from "./churn.js";
export { qName, dqName, xqName } from "./queues.js";
export { deadLetterStore } from "./dead-letters/store.js";
export { RedisDeadLetters } from "./brokers/redis/dead-letters.js";
export { RabbitmqDeadLetters } from "./brokers/rabbitmq/dead-letters.js";
export type { DeadLetterStore, DeadLetterEntry, DeadLetterFilter, DeadLetterPage, ListOptions, RequeueOptions, RequeueResult, PurgeOptions } from "./dead-letters/types.js";
export { createDashboard, type Dashboard, type DashboardOptions } from "./console/dashboard.js";
export { QueueMonitor, type Snapshot, type QueueRow, type WorkerRow } from "./console/monitor.js";
export { redactUrl, getLogger, setLogSink, setLogLevel } from "./logging.js";
export * from "./errors.js";
export { AgeLimit } from "./middleware/age-limit.js";
export { TimeLimit } from "./middleware/time-limit.js";
export { ShutdownNotifications } from "./middleware/shutdown-notifications.js";
export { Callbacks } from "./middleware/callbacks.js";
export { Pipelines } from "./middleware/pipelines.js";
export { Retries, type RetriesOptions } from "./middleware/retries.js";
export { Results, type ResultsOptions } from "./results/middleware.js";
export { GroupCallbacks, type GroupCallbacksOptions } from "./middleware/group-callbacks.js";
export { Prometheus } from "./middleware/prometheus.js";
export { computeBackoff, type BackoffOptions } from "./middleware/backoff.js";
export { pipeline, group, Pipeline, Group, type GroupChild, type RunOptions, type CompositionOptions } from "./composition.js";
export { RateLimiter, type RateLimiterOptions, type AcquireOptions } from "./rate-limits/rate-limiter.js";
export { ConcurrentRateLimiter, type ConcurrentRateLimiterOptions } from "./rate-limits/concurrent.js";
export { BucketRateLimiter, type BucketRateLimiterOptions } from "./rate-limits/bucket.js";
export { WindowRateLimiter, type WindowRateLimiterOptions } from "./rate-limits/window.js";
export { Barrier, type BarrierOptions } from "./rate-limits/barrier.js";
export { MemoryRateLimiterBackend } from "./rate-limits/memory.js";
export { getMetricsRegistry } from "./metrics/metrics.js";
export { startMetricsServer, metricsPortFromEnv, DEFAULT_METRICS_PORT, type MetricsServerOptions } from "./metrics/server.js";
export { schedule, Schedule, ScheduleRegistry, defaultSchedules, type ScheduleOptions, type MisfirePolicy, type Every } from "./schedules/schedule.js";
export { Scheduler, startScheduler } from "./schedules/scheduler.js";
export { scheduleStoreFor, type ScheduleStore, type FireRecord, type FireOutcome } from "./schedules/store.js";
export { cronTimetable, intervalTimetable, nextFires, type Timetable } from "./schedules/next-fire.js";
