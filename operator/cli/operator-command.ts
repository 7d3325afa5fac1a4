import { hostname } from "node:os";
import * as k8s from "@kubernetes/client-node";
import { intOption, listOption, parse } from "../../worker/cli/args.js";
import type { Command } from "../../worker/cli/command.js";
import { getLogger } from "../../worker/logging.js";
import { Operator } from "../operator.js";

const help = `Usage: troupe operator [options]

Run the Troupe operator: reconciles WorkerPool, Actor and Pipeline resources (troupe.dev/v1alpha1).
Connects in cluster (service account) or with a kubeconfig ($KUBECONFIG, ~/.kube/config or --kubeconfig).

Options:
  -n, --namespace NS[,NS...]      namespaces to watch (repeatable; default: all namespaces)
      --kubeconfig PATH           kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)
      --context NAME              kubeconfig context
      --leader-elect              run only while holding a coordination.k8s.io Lease (for several replicas)
      --leader-election-namespace NS   namespace of the Lease (default: $POD_NAMESPACE, else "default")
      --leader-election-id NAME   name of the Lease (default: troupe-operator)
      --lease-duration S          seconds a lease stays valid without renewal (default 15)
      --metrics-port N            port of /metrics, /healthz and /readyz (default 8080; 0 disables)
      --metrics-host HOST         address to bind (default 0.0.0.0)
      --resync S                  reconcile every object at least this often (default 300)

Exit codes: 0 stopped by SIGTERM/SIGINT, 1 lost leadership or failed, 2 bad arguments.`;

const log = getLogger("cli.operator");

const command: Command = {
  summary: "run the Kubernetes operator",
  help,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        namespace: { type: "string", short: "n", multiple: true },
        kubeconfig: { type: "string" },
        context: { type: "string" },
        "leader-elect": { type: "boolean" },
        "leader-election-namespace": { type: "string" },
        "leader-election-id": { type: "string" },
        "lease-duration": { type: "string" },
        "metrics-port": { type: "string" },
        "metrics-host": { type: "string" },
        resync: { type: "string" },
      },
      false,
    );
    const kubeConfig = new k8s.KubeConfig();
    if (values.kubeconfig) kubeConfig.loadFromFile(values.kubeconfig);
    else kubeConfig.loadFromDefault();
    if (values.context) kubeConfig.setCurrentContext(values.context);
    const leaseSeconds = intOption(values["lease-duration"], "lease-duration", 15);
    const port = intOption(values["metrics-port"], "metrics-port", 8080, 0);
    const identity = process.env.POD_NAME ?? `${hostname()}-${process.pid}`;
    const operator = new Operator({
      kubeConfig,
      namespaces: listOption(values.namespace),
      port: port === 0 ? undefined : port,
      host: values["metrics-host"] ?? "0.0.0.0",
      resyncMs: intOption(values.resync, "resync", 300) * 1000,
      leaderElection: values["leader-elect"]
        ? {
            namespace: values["leader-election-namespace"] ?? process.env.POD_NAMESPACE ?? "default",
            name: values["leader-election-id"] ?? "troupe-operator",
            identity,
            leaseDurationMs: leaseSeconds * 1000,
            renewDeadlineMs: Math.max(1000, Math.floor(leaseSeconds * 1000 * (2 / 3))),
            retryPeriodMs: Math.max(500, Math.floor((leaseSeconds * 1000) / 7)),
          }
        : undefined,
    });
    const outcome = new Promise<number>((resolve) => {
      const stop = (signal: string) => {
        log.info("stopping", { signal });
        void operator.stop().then(() => resolve(0));
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
      operator.once("lostLeadership", () => void operator.stop().then(() => resolve(1)));
    });
    await operator.start();
    log.info("operator running", { cluster: kubeConfig.getCurrentCluster()?.server, namespaces: values.namespace ?? "all", leaderElection: Boolean(values["leader-elect"]), port: operator.port ?? null, identity });
    return outcome;
  },
};

export default command;
