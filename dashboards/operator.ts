/** "Troupe / Operator": WorkerPool sizes and the operator's reconcile loop. */
import type { Dashboard } from "@grafana/schema";
import { dashboard, labelVariable, stat, target, timeseries } from "./grafana.js";

const POOL = `namespace=~"$namespace", workerpool=~"$workerpool"`;
const RATE = "$__rate_interval";
/** Only the leader exports pool gauges, but a leader change leaves the old leader's series briefly: max, not sum. */
const pool = (metric: string) => `max by (namespace, workerpool) (${metric}{${POOL}})`;

export function operatorDashboard(): Dashboard {
  return dashboard({
    uid: "troupe-operator",
    title: "Troupe / Operator",
    description: "WorkerPool replicas against their desired and maximum size, the queue depth the autoscaler sees, and the operator's reconcile loop.",
    namespaceMetric: "troupe_workerpool_replicas",
    variables: [
      labelVariable("workerpool", "WorkerPool", 'troupe_workerpool_replicas{namespace=~"$namespace"}', "workerpool"),
    ],
    rows: [
      {
        title: "Worker pools",
        panels: [
          stat("Pods", "Worker pods of the selected pools.", `sum(${pool("troupe_workerpool_replicas")})`),
          stat("Desired", "Pods the autoscaler asks for.", `sum(${pool("troupe_workerpool_desired_replicas")})`),
          stat(
            "Pools at max",
            "Pools whose autoscaler asks for their maxReplicas.",
            `count(${pool("troupe_workerpool_desired_replicas")} >= ${pool("troupe_workerpool_max_replicas")}) or vector(0)`,
            "short",
            [1],
          ),
          stat(
            "Reconcile errors / s",
            "Failed reconciles per second, all controllers.",
            `sum(rate(troupe_operator_reconcile_errors_total[${RATE}])) or vector(0)`,
            "ops",
            [0.001],
          ),
          timeseries(
            "Replicas vs desired vs max",
            "Current pods, the autoscaler's decision, and the pool's ceiling.",
            [
              target(pool("troupe_workerpool_replicas"), "{{namespace}}/{{workerpool}} replicas"),
              target(pool("troupe_workerpool_desired_replicas"), "{{namespace}}/{{workerpool}} desired"),
              target(pool("troupe_workerpool_max_replicas"), "{{namespace}}/{{workerpool}} max"),
            ],
            { w: 24 },
          ),
          timeseries("Queue depth seen by the autoscaler", "Ready, delayed and in-flight messages of each pool's queues, as the operator reads them from the broker.", [
            target(`max by (namespace, workerpool, queue_name, state) (troupe_workerpool_queue_depth{${POOL}})`, "{{workerpool}} {{queue_name}} {{state}}"),
          ], { w: 24 }),
        ],
      },
      {
        title: "Reconcile loop",
        panels: [
          timeseries(
            "Reconciles",
            "Reconciles per second by controller and result.",
            [target(`sum by (controller, result) (rate(troupe_operator_reconcile_total[${RATE}]))`, "{{controller}} {{result}}")],
            { unit: "ops", w: 8 },
          ),
          timeseries(
            "Reconcile errors",
            "Failed reconciles per second by controller.",
            [target(`sum by (controller) (rate(troupe_operator_reconcile_errors_total[${RATE}]))`, "{{controller}}")],
            { unit: "ops", w: 8 },
          ),
          timeseries(
            "Reconcile duration p95",
            "95th percentile time of one reconcile, by controller.",
            [target(`histogram_quantile(0.95, sum by (controller, le) (rate(troupe_operator_reconcile_duration_seconds_bucket[${RATE}])))`, "{{controller}}")],
            { unit: "s", w: 8 },
          ),
        ],
      },
    ],
  });
}
