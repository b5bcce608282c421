// Regenerates src/api/schema.d.ts, the types of the typed API client, from the server's
// OpenAPI document: a file (as `cargo xtask openapi` writes it, without a server) or the
// URL of a running server's /api/openapi.json. `type: object` without properties (a
// workflow definition, metadata) is typed `unknown`, not `Record<string, never>`.
//
//   npm run api:generate                      # http://127.0.0.1:8080/api/openapi.json
//   npm run api:generate -- ../target/openapi.json
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const source = process.argv[2] ?? "http://127.0.0.1:8080/api/openapi.json";
const output = process.argv[3] ?? path.join(root, "src", "api", "schema.d.ts");
const cli = path.join(root, "node_modules", ".bin", "openapi-typescript");

const result = spawnSync(cli, [source, "--empty-objects-unknown", "--output", output], { stdio: "inherit" });
process.exit(result.status ?? 1);
