// Prints what the first page costs: the entry chunk and every chunk it imports
// statically, gzipped (what a browser downloads before the sign-in page shows), and fails
// the build when that passes the budget. Pages and the builder are lazy chunks, loaded on
// first visit, and not counted. Reads Vite's manifest, then removes it (the binary embeds
// dist/, and the manifest is not for browsers).
import { readFileSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The budget of the first page's JavaScript, gzipped. */
const BUDGET_BYTES = 250 * 1024;

const dist = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), "dist");
const manifestPath = path.join(dist, ".vite", "manifest.json");
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));

const seen = new Set();
/** @param {string} key */
const visit = (key) => {
  const chunk = manifest[key];
  if (!chunk || seen.has(chunk.file)) return;
  seen.add(chunk.file);
  for (const imported of chunk.imports ?? []) visit(imported);
};
visit("index.html");

let total = 0;
for (const file of [...seen].filter((f) => f.endsWith(".js"))) {
  const size = gzipSync(readFileSync(path.join(dist, file))).length;
  total += size;
  console.log(`first page  ${file}  ${(size / 1024).toFixed(1)} KB gzipped`);
}
rmSync(path.join(dist, ".vite"), { recursive: true, force: true });
const verdict = total <= BUDGET_BYTES ? "within" : "OVER";
console.log(`first page JavaScript: ${(total / 1024).toFixed(1)} KB gzipped, ${verdict} the ${BUDGET_BYTES / 1024} KB budget`);
if (total > BUDGET_BYTES) process.exit(1);
