import type { Broker } from "../broker.js";
import { getRateLimiterBackend, getResultBackend } from "../global.js";
import { Message } from "../message.js";
import type { MainHandlers } from "./main-rpc.js";

/** The main-thread services actor code reaches through RPC: `broker` and the process's backends. */
export function mainHandlers(broker: Broker): MainHandlers {
  const limiter = () => getRateLimiterBackend();
  return {
    enqueueMany: async (datas, options) => {
      const sent = await broker.enqueueMany(datas.map((d) => Message.fromData(d)), options);
      return sent.map((m) => m.toData());
    },
    queueStats: (queue) => broker.queueStats(queue),
    getResult: (data, options) => getResultBackend().getResult(Message.fromData(data), options),
    "rateLimiter.add": (...args) => limiter().add(...args),
    "rateLimiter.incr": (...args) => limiter().incr(...args),
    "rateLimiter.decr": (...args) => limiter().decr(...args),
    "rateLimiter.incrAndSum": (...args) => limiter().incrAndSum(...args),
    "rateLimiter.wait": (...args) => limiter().wait(...args),
    "rateLimiter.waitNotify": (...args) => limiter().waitNotify(...args),
  };
}
