import { actor } from "troupe";
export const noop = actor("exp_noop", () => 1, { queue: process.env.EXP_QUEUE ?? "exp", maxRetries: 0 });
