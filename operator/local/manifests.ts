import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { loadCrdValidators, type CrdValidator } from "../api/crd-validator.js";
import { API_VERSION, type ActorResource, type PipelineResource, type WorkerPool } from "../api/types.js";

export interface LocalManifests {
  pools: (WorkerPool & { sourceDir: string })[];
  actors: ActorResource[];
  pipelines: PipelineResource[];
  /** Secret values by `name/key`, from Secret manifests (data is base64, stringData plain). */
  secrets: Map<string, string>;
}

/**
 * Read every YAML document of the files; a document of an unknown kind, a file that does not parse or a resource
 * the cluster would refuse (checked against the CRDs' own schemas and CEL rules, unknown fields rejected as
 * `kubectl apply` does) is an error.
 */
export async function loadManifests(files: readonly string[]): Promise<LocalManifests> {
  const out: LocalManifests = { pools: [], actors: [], pipelines: [], secrets: new Map() };
  let validators: Map<string, CrdValidator> | undefined;
  for (const file of files) {
    const text = await readFile(file, "utf8");
    const docs = parseAllDocuments(text);
    for (const doc of docs) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const value = doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string }; spec?: unknown; data?: Record<string, string>; stringData?: Record<string, string> } | null;
      if (value === null) continue;
      const where = `${file}: ${value.kind ?? "document"} ${value.metadata?.name ?? "(unnamed)"}`;
      if (!value.metadata?.name) throw new Error(`${where}: metadata.name is required`);
      if (value.kind === "Secret" && value.apiVersion === "v1") {
        for (const [k, v] of Object.entries(value.data ?? {})) out.secrets.set(`${value.metadata.name}/${k}`, Buffer.from(v, "base64").toString("utf8"));
        for (const [k, v] of Object.entries(value.stringData ?? {})) out.secrets.set(`${value.metadata.name}/${k}`, v);
        continue;
      }
      if (!["WorkerPool", "Actor", "Pipeline"].includes(value.kind ?? "")) {
        throw new Error(`${where}: troupe up runs WorkerPool, Actor and Pipeline resources (and reads Secrets), not ${value.kind ?? "a document without kind"}`);
      }
      if (value.apiVersion !== API_VERSION) throw new Error(`${where}: apiVersion must be ${API_VERSION}`);
      if (typeof value.spec !== "object" || value.spec === null) throw new Error(`${where}: spec is required`);
      validators ??= loadCrdValidators(crdDir(), "reject");
      // The check fills in the schema's defaults; `troupe up` keeps what was written and applies its own defaults.
      const causes = validators.get(`${value.apiVersion}/${value.kind}`)!.check(structuredClone(value) as Record<string, unknown>);
      if (causes.length) throw new Error(`${where} is invalid: ${causes.join("; ")}`);
      if (value.kind === "WorkerPool") out.pools.push({ ...(value as unknown as WorkerPool), sourceDir: dirname(file) });
      else if (value.kind === "Actor") out.actors.push(value as unknown as ActorResource);
      else out.pipelines.push(value as unknown as PipelineResource);
    }
  }
  return out;
}

/** The package's crds/ folder, from the compiled file (dist/operator/local) or the source (operator/local). */
function crdDir(): string {
  for (const up of ["../../../crds", "../../crds"]) {
    const dir = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new Error("the CRDs (crds/*.yaml) are not beside this installation of troupe; reinstall the package");
}
