import { connect } from "amqplib";
import { Redis } from "ioredis";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  redis: string;
  rabbitmq: string;
  /** The 1-minute load average when the run started and when it ended: how busy the machine was. */
  load?: { start: number; end?: number };
}

async function redisVersion(url: string): Promise<string> {
  const redis = new Redis(url);
  try {
    return /^redis_version:(\S+)/m.exec(await redis.info("server"))?.[1] ?? "unknown";
  } finally {
    redis.disconnect();
  }
}

async function rabbitmqVersion(url: string): Promise<string> {
  const connection = await connect(url);
  try {
    const version: unknown = connection.connection.serverProperties.version;
    return typeof version === "string" ? version : "unknown";
  } finally {
    await connection.close();
  }
}

/** What the figures were measured on: they only compare within one run on one machine. */
export async function describeMachine(redisUrl: string, amqpUrl: string | undefined): Promise<Machine> {
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: availableParallelism(),
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    redis: await redisVersion(redisUrl),
    rabbitmq: amqpUrl ? await rabbitmqVersion(amqpUrl) : "not measured",
    load: { start: loadavg()[0]! },
  };
}
