/**
 * Copy the CRDs (crds/*.yaml, the source of truth) into the Helm chart's crds/ folder, byte for byte, and remove chart
 * copies whose source is gone. Helm cannot read files outside the chart, and a symlink would not survive `helm package`.
 * test/shipping/chart.test.ts fails when the copies differ: run `node scripts/sync-crds.mjs` after editing a CRD.
 */
import { copyFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const source = join(root, "crds");
const target = join(root, "helm", "troupe", "files", "crds");

const yamlIn = (dir) => readdirSync(dir).filter((f) => f.endsWith(".yaml"));
const wanted = new Set(yamlIn(source));
for (const name of yamlIn(target)) if (!wanted.has(name)) rmSync(join(target, name));
for (const name of wanted) copyFileSync(join(source, name), join(target, name));
console.log(`synced ${wanted.size} CRDs into helm/troupe/files/crds/`);
