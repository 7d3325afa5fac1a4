import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { pythonBody } from "../interop-numbers/python-shapes.js";
import { REDIS_URL, fixture, uniqueName } from "../support/env.js";
import { assertRanOnce, runs } from "../support/mixed-fleet.js";
import { CliProcess } from "../support/process.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

const queue = "mixed_q";
/** Both languages' heartbeat timeout in these tests: a peer silent this long is dead. */
const HEARTBEAT_TIMEOUT = 4000;
/** Holds a Troupe thread far longer than any test, so a message taken by a killed worker never ran to its end. */
const FOREVER = 600_000;

/**
 * Dramatiq 2.2's dispatch.lua as test/golden/SPEC.md §3.3–3.5 describes it, for the commands a consumer uses.
 * ARGV = command, now, queue_name, worker_id, heartbeat_timeout, dead_message_ttl, do_maintenance, max_unpack, args…
 * It heartbeats first, then (do_maintenance "1") requeues the ack sets of workers whose heartbeat is older than the
 * timeout for this queue only and forgets a dead worker once no ack set of it is left, then runs the command.
 * Written from the SPEC rather than shared with worker/brokers/redis/*.lua, so that Troupe is tested against
 * Dramatiq's behaviour and not against itself.
 */
const DRAMATIQ_DISPATCH = `
local ns, command, now, queue_name, worker_id = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local heartbeat_timeout, dead_message_ttl, max_unpack = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[8])
local heartbeats = ns .. ":__heartbeats__"
local queue = ns .. ":" .. queue_name
local msgs = queue .. ".msgs"
local queue_acks = ns .. ":__acks__." .. worker_id .. "." .. queue_name
local xq = ns .. ":" .. string.gsub(queue_name, "%.DQ$", "") .. ".XQ"
redis.call("zadd", heartbeats, now, worker_id)
if ARGV[7] == "1" then
  for _, dead in ipairs(redis.call("zrangebyscore", heartbeats, "-inf", now - heartbeat_timeout)) do
    local dead_acks = ns .. ":__acks__." .. dead .. "." .. queue_name
    for _, id in ipairs(redis.call("smembers", dead_acks)) do
      if redis.call("hexists", msgs, id) == 1 then
        redis.call("rpush", queue, id)
      end
    end
    redis.call("del", dead_acks)
    if #redis.call("keys", ns .. ":__acks__." .. dead .. "*") == 0 then
      redis.call("zrem", heartbeats, dead)
    end
  end
  local expired = redis.call("zrangebyscore", xq, "-inf", now - dead_message_ttl, "LIMIT", 0, max_unpack)
  if #expired > 0 then
    redis.call("zrem", xq, unpack(expired))
    redis.call("hdel", xq .. ".msgs", unpack(expired))
  end
end
if command == "enqueue" then
  redis.call("hset", msgs, ARGV[9], ARGV[10])
  redis.call("rpush", queue, ARGV[9])
  return 1
elseif command == "fetch" then
  local ids = redis.call("lpop", queue, math.min(tonumber(ARGV[9]), max_unpack))
  if not ids then
    return {}
  end
  redis.call("sadd", queue_acks, unpack(ids))
  return redis.call("hmget", msgs, unpack(ids))
elseif command == "ack" then
  if redis.call("srem", queue_acks, ARGV[9]) == 1 then
    redis.call("hdel", msgs, ARGV[9])
  end
  return 1
end
return redis.error_reply("unknown command " .. command)`;

/** A message body as Python's Redis broker writes it: `redis_message_id` first in options, before any `eta`. */
function redisBody(queueName: string, id: string, holdMs: number, redisId: string, eta?: number): string {
  const options = `"redis_message_id":"${redisId}"${eta === undefined ? "" : `,"eta":${eta}`}`;
  return pythonBody({ queue: queueName, actor: "mixed_hold", args: `["${id}",${holdMs}]`, kwargs: "{}", options, messageId: randomUUID(), timestamp: Date.now() });
}

interface PythonMessage {
  queue_name: string;
  args: [string, number];
  options: { redis_message_id: string; eta?: number };
}

/**
 * A Python Dramatiq worker process as Redis sees it: one broker id, every operation a call of Dramatiq's dispatch
 * script with its own clock, heartbeat timeout and maintenance flag, and Dramatiq's consumer per queue and delay
 * queue (fetch up to the prefetch, hold delayed messages until their eta and then enqueue a copy on the queue and
 * ack the delayed one). Running `mixed_hold` is appending "ran <id> python" to the tally file, as the Troupe actor
 * appends its runs. `maintenance: true` rolls maintenance on every call (Dramatiq's maintenance_chance at 100 %).
 */
class DramatiqPeer {
  readonly workerId = randomUUID();
  /** Calls made with maintenance on, and when the first and the last of them ran. */
  maintenance = { calls: 0, first: 0, last: 0 };
  private stopped: Promise<void> | undefined;
  private running = false;

  constructor(
    private readonly client: Redis,
    private readonly namespace: string,
    private readonly tally: string,
    private readonly options: { maintenance: boolean },
  ) {}

  private async dispatch(command: string, queueName: string, ...args: (string | number)[]): Promise<unknown> {
    const now = Date.now();
    const roll = this.options.maintenance && command !== "ack";
    const reply = await this.client.eval(DRAMATIQ_DISPATCH, 1, this.namespace, command, now, queueName, this.workerId, HEARTBEAT_TIMEOUT, 604_800_000, roll ? "1" : "0", 3996, ...args);
    if (roll) this.maintenance = { calls: this.maintenance.calls + 1, first: this.maintenance.first || now, last: now };
    return reply;
  }

  enqueue(body: string): Promise<unknown> {
    const message = JSON.parse(body) as PythonMessage;
    return this.dispatch("enqueue", message.queue_name, message.options.redis_message_id, body);
  }

  /** Fetch into this worker's ack set, as Dramatiq's consumer does, and decode. */
  async fetch(queueName: string, count: number): Promise<PythonMessage[]> {
    const bodies = (await this.dispatch("fetch", queueName, count)) as (string | null)[];
    return bodies.filter((body): body is string => body !== null).map((body) => JSON.parse(body) as PythonMessage);
  }

  /** Consume the queue and its delay queue until stopped: run what is due, promote the delayed when due. */
  consume(prefetch: number): void {
    this.running = true;
    const held: PythonMessage[] = [];
    const loop = async (): Promise<void> => {
      let misses = 0;
      while (this.running) {
        const fetched = [...(await this.fetch(queue, prefetch)), ...(await this.fetch(`${queue}.DQ`, prefetch - held.length))];
        for (const message of fetched) {
          if (message.options.eta === undefined) {
            await appendFile(this.tally, `ran ${message.args[0]} python\n`);
            await this.dispatch("ack", queue, message.options.redis_message_id);
          } else held.push(message);
        }
        for (const message of held.filter((m) => m.options.eta! <= Date.now())) {
          held.splice(held.indexOf(message), 1);
          const { redis_message_id: delayedId, eta: _eta, ...rest } = message.options;
          await this.enqueue(JSON.stringify({ ...message, queue_name: queue, options: { ...rest, redis_message_id: randomUUID() } }));
          await this.dispatch("ack", `${queue}.DQ`, delayedId);
        }
        misses = fetched.length ? 0 : misses + 1;
        // Dramatiq's empty-poll backoff, capped lower than its 1 s worker_timeout to keep the tests short.
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, 5 * 2 ** misses)));
      }
    };
    this.stopped = loop();
  }

  /** Stop polling: from now on this worker sends no heartbeat, as if its process had died. */
  async die(): Promise<void> {
    this.running = false;
    await this.stopped;
  }
}

function troupeWorker(namespace: string, tally: string): CliProcess {
  return new CliProcess(["worker", fixture("mixed-fleet"), "--broker", REDIS_URL, "--processes", "1", "--threads", "4", "--prefetch", "16"], {
    TROUPE_REDIS_NAMESPACE: namespace,
    TROUPE_REDIS_HEARTBEAT_TIMEOUT: String(HEARTBEAT_TIMEOUT),
    TROUPE_TEST_MIXED_QUEUE: queue,
    TROUPE_TEST_MIXED_FILE: tally,
    TROUPE_METRICS_PORT: "off",
  });
}

/** Members of a worker's ack sets for the queue and its delay queue. */
async function held(client: Redis, namespace: string, workerId: string): Promise<number> {
  return (await client.scard(`${namespace}:__acks__.${workerId}.${queue}`)) + (await client.scard(`${namespace}:__acks__.${workerId}.${queue}.DQ`));
}

/** Nothing queued, held or stored for the queue: every message was acked. */
async function drained(client: Redis, namespace: string): Promise<boolean> {
  const keys = [queue, `${queue}.msgs`, `${queue}.DQ`, `${queue}.DQ.msgs`, `${queue}.XQ`].map((k) => `${namespace}:${k}`);
  return (await client.exists(...keys)) === 0 && (await client.keys(`${namespace}:__acks__.*`)).length === 0;
}

describe("Redis mixed fleet: crash recovery between Troupe and Python Dramatiq workers", () => {
  let client: Redis;
  let dir: string;
  const namespaces: string[] = [];
  const processes: CliProcess[] = [];

  before(async () => {
    client = redisClient(REDIS_URL);
    dir = await mkdtemp(join(tmpdir(), "troupe-mixed-"));
  });
  after(async () => {
    for (const worker of processes) await worker.kill();
    for (const namespace of namespaces) await deleteNamespace(client, namespace);
    client.disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  /** A namespace of its own with a Python peer that enqueued 10 messages: 8 due now, 2 delayed by `delayMs`. */
  async function fleet(prefix: string, { maintenance, holdMs, delayMs }: { maintenance: boolean; holdMs: number; delayMs: number }) {
    const namespace = uniqueName(`mixed_${prefix}`);
    namespaces.push(namespace);
    const tally = join(dir, `${namespace}.txt`);
    const python = new DramatiqPeer(client, namespace, tally, { maintenance });
    const ids = Array.from({ length: 10 }, (_, i) => `${prefix}${i}`);
    const eta = Date.now() + delayMs;
    for (const [i, id] of ids.entries()) await python.enqueue(redisBody(i < 8 ? queue : `${queue}.DQ`, id, holdMs, randomUUID(), i < 8 ? undefined : eta));
    return { namespace, tally, python, ids };
  }

  /** A `troupe worker` process (supervisor and one worker process) and the broker id its heartbeat carries. */
  async function startTroupe(namespace: string, tally: string, python: DramatiqPeer): Promise<{ troupe: CliProcess; troupeId: string }> {
    const troupe = troupeWorker(namespace, tally);
    processes.push(troupe);
    const troupeId = await until(async () => (await client.zrange(`${namespace}:__heartbeats__`, 0, -1)).find((w) => w !== python.workerId), "the Troupe worker's heartbeat", { timeout: 60_000, interval: 50 });
    return { troupe, troupeId };
  }

  test("a Troupe worker killed with SIGKILL while running and prefetching: a Python peer's maintenance takes its ack sets over and runs each message once", async (t) => {
    // The Troupe worker holds the two delayed ones in its `.DQ` ack set until due.
    const { namespace, tally, python, ids } = await fleet("k", { maintenance: true, holdMs: FOREVER, delayMs: 8000 });
    const { troupe, troupeId } = await startTroupe(namespace, tally, python);
    await until(async () => (await held(client, namespace, troupeId)) === ids.length && (await runs(tally)).started.length === 4, "the Troupe worker running 4 messages and holding all 10", { timeout: 60_000, interval: 50 });

    // While it lives, a Python peer rolling maintenance on every call leaves its messages alone, busy threads or not.
    python.consume(16);
    await until(() => python.maintenance.calls > 0 && python.maintenance.last - python.maintenance.first > 2 * HEARTBEAT_TIMEOUT, "the peer's maintenance for twice the heartbeat timeout", { timeout: 60_000, interval: 50 });
    assert.equal(await held(client, namespace, troupeId), ids.length, "a live Troupe worker keeps its messages");
    assert.deepEqual((await runs(tally)).ran, []);

    await troupe.kill();
    const killedAt = Date.now();
    await until(async () => (await runs(tally)).ran.length >= ids.length, "the Python peer to run every message", { timeout: 60_000, interval: 50 });
    await until(() => drained(client, namespace), "every message acked and the dead worker's ack sets gone");
    await python.die();
    const { started, ran } = await runs(tally);
    assertRanOnce(ids, ran, (by) => by === "python");
    assert.equal(started.length, 4, "the killed worker had 4 messages running");
    assert.equal(await client.zscore(`${namespace}:__heartbeats__`, troupeId), null, "the peer forgot the dead worker once its ack sets were gone");
    t.diagnostic(`recovered by the Python peer ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill (heartbeat timeout ${HEARTBEAT_TIMEOUT} ms, delayed etas included)`);
  });

  test("a Python worker holding messages in its ack sets stops heart-beating: Troupe's maintenance takes them over and runs each once", async (t) => {
    const { namespace, tally, python, ids } = await fleet("p", { maintenance: false, holdMs: 0, delayMs: 1000 });
    assert.equal((await python.fetch(queue, 16)).length + (await python.fetch(`${queue}.DQ`, 8000)).length, ids.length);

    // Alive, it polls (and so heart-beats) while holding them; the Troupe worker must leave them alone.
    const polling = setInterval(() => void python.fetch(queue, 1), 100);
    let troupe: CliProcess;
    try {
      let troupeId: string;
      ({ troupe, troupeId } = await startTroupe(namespace, tally, python));
      const troupeUp = Date.now();
      await until(() => Date.now() - troupeUp > 2 * HEARTBEAT_TIMEOUT, "twice the heartbeat timeout with the Troupe worker up", { timeout: 60_000, interval: 100 });
      assert.equal(await held(client, namespace, python.workerId), ids.length, "a live Python worker keeps its messages");
      assert.equal(await held(client, namespace, troupeId), 0);
    } finally {
      clearInterval(polling);
    }

    const diedAt = Date.now();
    await until(async () => (await runs(tally)).ran.length >= ids.length, "the Troupe worker to run every message", { timeout: 60_000, interval: 50 });
    await until(() => drained(client, namespace), "every message acked and the dead worker's ack sets gone");
    const recoveredIn = Date.now() - diedAt;
    assertRanOnce(ids, (await runs(tally)).ran, (by) => by !== "python");
    assert.equal(await client.zscore(`${namespace}:__heartbeats__`, python.workerId), null, "Troupe forgot the dead Python worker");
    assert.equal(await troupe.stop(), 0);
    t.diagnostic(`taken over by Troupe ${(recoveredIn / 1000).toFixed(1)} s after the Python worker's last heartbeat (timeout ${HEARTBEAT_TIMEOUT} ms)`);
  });
});
