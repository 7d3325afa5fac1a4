import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { installChartRbac } from "./chart-rbac.js";
import { CliProcess } from "./process.js";
import { REDIS_URL, uniqueName } from "./env.js";
import { customObjects, namespaceWithBroker, startFakeApiServer } from "./operator.js";
import { deleteNamespace, redisClient } from "./redis.js";

export interface OperatorProcessOptions {
  kubeconfig: string;
  namespace: string;
  leaseName: string;
  env?: Record<string, string>;
}

/** `troupe operator --leader-elect` as its own process, so that a test can SIGKILL it like a crashed pod. */
export class OperatorProcess extends CliProcess {
  constructor(options: OperatorProcessOptions) {
    const args = ["operator", "--kubeconfig", options.kubeconfig, "-n", options.namespace, "--metrics-port", "0"];
    args.push("--leader-elect", "--leader-election-namespace", "kube-system", "--leader-election-id", options.leaseName, "--lease-duration", "2");
    // Without POD_NAME the CLI names itself `<hostname>-<pid>` in the Lease (see `holds`).
    super(args, { TROUPE_LOG_LEVEL: "info", ...options.env, POD_NAME: undefined });
  }

  /** The identity the CLI uses in the Lease: `<hostname>-<pid>` when POD_NAME is unset. */
  holds(identity: string | undefined): boolean {
    return identity?.endsWith(`-${this.pid}`) ?? false;
  }
}

/**
 * A fake API server with the CRDs, a kubeconfig file for `troupe operator` processes, and a namespace whose
 * `broker` Secret points at the test Redis (keys under a namespace of their own). `cleanup` kills every operator
 * started through it and removes everything.
 */
export class OperatorSandbox {
  readonly operators: OperatorProcess[] = [];
  readonly redisNamespace = uniqueName("chaos");
  readonly env = { TROUPE_REDIS_NAMESPACE: this.redisNamespace };
  readonly leaseName = uniqueName("lease").toLowerCase().replace(/_/g, "-");
  private readonly dir = mkdtempSync(join(tmpdir(), "troupe-operator-chaos-"));
  readonly kubeconfig = join(this.dir, "kubeconfig");

  private constructor(
    readonly fake: FakeApiServer,
    readonly namespace: string,
    operatorKubeConfig: k8s.KubeConfig,
  ) {
    writeFileSync(this.kubeconfig, operatorKubeConfig.exportConfig());
  }

  /** The operators run as the chart's ServiceAccount, released in kube-system (their Lease) and watching `namespace`. */
  static async create(): Promise<OperatorSandbox> {
    const fake = await startFakeApiServer();
    const namespace = await namespaceWithBroker(fake.kubeConfig(), REDIS_URL);
    return new OperatorSandbox(fake, namespace, await installChartRbac(fake, { releaseNamespace: "kube-system", watchNamespaces: [namespace] }));
  }

  get objects(): ReturnType<typeof customObjects> {
    return customObjects(this.fake.kubeConfig());
  }

  startOperator(): OperatorProcess {
    const operator = new OperatorProcess({ kubeconfig: this.kubeconfig, namespace: this.namespace, leaseName: this.leaseName, env: this.env });
    this.operators.push(operator);
    return operator;
  }

  /** The identity holding the operator's Lease, if any. */
  holder(): string | undefined {
    return (this.fake.get("coordination.k8s.io", "leases", "kube-system", this.leaseName)?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;
  }

  async cleanup(): Promise<void> {
    for (const operator of this.operators) await operator.kill();
    await this.fake.stop();
    const client = redisClient(REDIS_URL);
    await deleteNamespace(client, this.redisNamespace);
    client.disconnect();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
