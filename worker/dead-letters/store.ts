import type { Broker } from "../broker.js";
import { RabbitmqBroker } from "../brokers/rabbitmq.js";
import { RedisBroker } from "../brokers/redis.js";
import { RabbitmqDeadLetters } from "../brokers/rabbitmq/dead-letters.js";
import { RedisDeadLetters } from "../brokers/redis/dead-letters.js";
import { TroupeError } from "../errors.js";
import type { DeadLetterStore } from "./types.js";

/** The dead-letter tools for a broker's layout; they use connections of their own, closed by the store's close(). */
export function deadLetterStore(broker: Broker): DeadLetterStore {
  if (broker instanceof RedisBroker) return new RedisDeadLetters(broker.createClient("dead-letters"), broker.namespace, broker.displayUrl);
  if (broker instanceof RabbitmqBroker) return new RabbitmqDeadLetters(() => broker.openDedicatedConnection("dead-letters"));
  throw new TroupeError(`dead-letter tools need a Redis or RabbitMQ broker, not ${broker.displayUrl}`);
}
