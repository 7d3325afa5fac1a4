/** The Troupe operator as a library (`troupe/operator`): run it in-process, or reuse its scaling decision. */
export { Operator, type OperatorOptions } from "./operator.js";
export { decideReplicas, type ScaleSignals, type Recommendation, type ScaleDecision, type ScaleInput, type ScaleReason } from "./scaling/decide.js";
export { SizeDecider, type SizeDecision, type BacklogReading } from "./scaling/size-decider.js";
export { measureThroughputPerReplica, type ThroughputSample } from "./scaling/throughput.js";
export { deletionCosts, POD_DELETION_COST, type PodLoad } from "./scaling/deletion-cost.js";
export { LocalRunner, type LocalRunnerOptions } from "./local/runner.js";
export { loadManifests, type LocalManifests } from "./local/manifests.js";
export { OperatorMetrics } from "./runtime/metrics.js";
export * from "./api/types.js";
