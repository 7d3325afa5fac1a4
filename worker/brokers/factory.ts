import type { Broker, BrokerOptions } from "../broker.js";
import { TroupeError } from "../errors.js";
import { setBrokerFactory } from "../global.js";
import { redactUrl } from "../logging.js";
import { MemoryBroker } from "./memory.js";
import { RabbitmqBroker } from "./rabbitmq.js";
import { RedisBroker } from "./redis.js";

export const DEFAULT_BROKER_URL = "memory://";

/** Build the broker a URL names: `memory://`, `redis://`, `rediss://`, `amqp://` or `amqps://`. */
export function createBroker(url: string = process.env.TROUPE_BROKER_URL || DEFAULT_BROKER_URL, options: BrokerOptions = {}): Broker {
  const scheme = url.split(":", 1)[0]?.toLowerCase();
  switch (scheme) {
    case "memory":
      return new MemoryBroker(options);
    case "amqp":
    case "amqps":
      return new RabbitmqBroker(url, options);
    case "redis":
    case "rediss":
      return new RedisBroker(url, options);
    default:
      throw new TroupeError(`unsupported broker URL ${redactUrl(url)}: use memory://, redis://, rediss://, amqp:// or amqps://`);
  }
}

setBrokerFactory(() => createBroker());
