// The builder's model: a workflow definition as canvas nodes and edges, and back; where a
// node goes when nothing says; and which node and field each of the API's 422 errors is
// about. Pure functions: the canvas component holds the state.
import type { FieldError } from "../api/problem";

/** A node of a definition (`nodes[]`). */
export interface DefinitionNode {
  id: string;
  type: string;
  name: string;
  params?: Record<string, unknown>;
  credential_id?: string | null;
}

/** An edge of a definition (`connections[]`): `output` of `from` feeds `to`. */
export interface DefinitionConnection {
  from: string;
  output?: string;
  to: string;
}

/** A workflow definition (a type alias: it is sent as the API's free-form object). */
export type Definition = {
  nodes: DefinitionNode[];
  connections: DefinitionConnection[];
};

/** Where a node is drawn. */
export interface Position {
  x: number;
  y: number;
}

/** The horizontal distance between columns of nodes. */
export const COLUMN = 260;
/** The vertical distance between rows of nodes. */
export const ROW = 130;

/** Positions for a definition (it keeps none): columns by the longest path from a node
 * without inputs, rows in definition order within a column. */
export function layout(definition: Definition): Record<string, Position> {
  const depth: Record<string, number> = {};
  const incoming = new Map<string, string[]>();
  for (const c of definition.connections) incoming.set(c.to, [...(incoming.get(c.to) ?? []), c.from]);
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    if (depth[id] !== undefined) return depth[id];
    if (visiting.has(id)) return 0; // a cycle: the API refuses it; draw it anyway
    visiting.add(id);
    const parents = incoming.get(id) ?? [];
    const found = parents.length ? Math.max(...parents.map(depthOf)) + 1 : 0;
    visiting.delete(id);
    depth[id] = found;
    return found;
  };
  const rows: number[] = [];
  const positions: Record<string, Position> = {};
  for (const node of definition.nodes) {
    const column = depthOf(node.id);
    const row = rows[column] ?? 0;
    rows[column] = row + 1;
    positions[node.id] = { x: column * COLUMN, y: row * ROW };
  }
  return positions;
}

/** A fresh node id for `type` (`set`, `set_2`, …), unique among `taken`. */
export function freshId(type: string, taken: Iterable<string>): string {
  const base = (type.split(".").pop() ?? "node").replace(/[^a-z0-9_]/gi, "_").toLowerCase() || "node";
  const used = new Set(taken);
  if (!used.has(base)) return base;
  let n = 2;
  while (used.has(`${base}_${n}`)) n += 1;
  return `${base}_${n}`;
}

/** What the API's field errors say about each node (by id): messages by parameter
 * (`params.url` → `url`), `credential_id`, and `""` for the rest of the node (its type);
 * errors about the graph as a whole (`definition.nodes`, `definition.connections[2]`)
 * are under `graph`. */
export function errorsByNode(
  errors: FieldError[],
  definition: Definition,
): { nodes: Record<string, Record<string, string>>; graph: string[] } {
  const nodes: Record<string, Record<string, string>> = {};
  const graph: string[] = [];
  const put = (id: string, field: string, message: string) => {
    const found = (nodes[id] ??= {});
    found[field] = found[field] ? `${found[field]}; ${message}` : message;
  };
  for (const error of errors) {
    const match = /^definition\.nodes\[(\d+)\](?:\.params\.([A-Za-z0-9_]+)|\.([a-z_]+))?/.exec(error.field);
    const node = match ? definition.nodes[Number(match[1])] : undefined;
    if (match && node) {
      // The API prefixes the message with the node (`node \`a\`: is required`).
      const message = error.message.replace(/^node `[^`]*`: /, "");
      const field = match[2] ?? (match[3] === "credential_id" ? "credential_id" : "");
      put(node.id, field, match[3] && !["params", "credential_id"].includes(match[3]) ? `${match[3]}: ${message}` : message);
    } else {
      graph.push(`${error.field}: ${error.message}`);
    }
  }
  return { nodes, graph };
}
