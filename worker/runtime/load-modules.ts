import { pathToFileURL } from "node:url";

const TYPESCRIPT = /\.(c|m)?ts$/;
let typescriptReady: Promise<void> | undefined;

/** Import actor modules in order; TypeScript files are compiled on the fly by tsx, with no build step. */
export async function importModules(paths: readonly string[]): Promise<void> {
  if (paths.some((p) => TYPESCRIPT.test(p))) {
    typescriptReady ??= import("tsx/esm/api").then(({ register }) => void register());
    await typescriptReady;
  }
  for (const path of paths) await import(pathToFileURL(path).href);
}
