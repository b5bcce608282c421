// Writes a gzipped copy (`<file>.gz`) beside every text file of the build that gzip makes
// smaller: the binary embeds both, and answers the copy, with `Content-Encoding: gzip`,
// to a browser that accepts it (`fluxolab_http::console`). Compressing once here costs
// the server nothing per request.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync, constants } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

const TEXT = new Set([".html", ".js", ".css", ".svg", ".json", ".txt", ".map"]);
const dist = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), "dist");

let before = 0;
let after = 0;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !TEXT.has(path.extname(entry.name))) continue;
  const file = path.join(entry.parentPath, entry.name);
  const body = readFileSync(file);
  const gzipped = gzipSync(body, { level: constants.Z_BEST_COMPRESSION });
  if (gzipped.length >= body.length) continue;
  writeFileSync(`${file}.gz`, gzipped);
  before += body.length;
  after += gzipped.length;
}
console.log(`precompressed: ${(before / 1024).toFixed(1)} KB of text files as ${(after / 1024).toFixed(1)} KB gzipped`);
