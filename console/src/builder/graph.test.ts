import { describe, expect, it } from "vitest";
import { errorsByNode, freshId, layout, type Definition } from "./graph";

const BRANCHING: Definition = {
  nodes: [
    { id: "start", type: "trigger.manual", name: "Start" },
    { id: "check", type: "flow.if", name: "Check", params: { condition: "{{ trigger.body.ok }}" } },
    { id: "yes", type: "data.set", name: "Yes", params: { values: {} } },
    { id: "no", type: "data.set", name: "No", params: { values: {} } },
    { id: "after", type: "data.set", name: "After", params: { values: {} } },
  ],
  connections: [
    { from: "start", output: "main", to: "check" },
    { from: "check", output: "true", to: "yes" },
    { from: "check", output: "false", to: "no" },
    { from: "yes", to: "after" },
    { from: "start", to: "after" },
  ],
};

describe("the builder's graph", () => {
  it("lays nodes out in columns by their longest path from the trigger", () => {
    const positions = layout(BRANCHING);
    expect(positions.start).toEqual({ x: 0, y: 0 });
    expect(positions.check).toEqual({ x: 260, y: 0 });
    expect(positions.yes).toEqual({ x: 520, y: 0 });
    expect(positions.no).toEqual({ x: 520, y: 130 });
    // Reached from start directly and through yes: drawn after yes.
    expect(positions.after).toEqual({ x: 780, y: 0 });
  });

  it("still draws a cycle", () => {
    const positions = layout({
      nodes: [
        { id: "a", type: "data.set", name: "A" },
        { id: "b", type: "data.set", name: "B" },
      ],
      connections: [
        { from: "a", to: "b" },
        { from: "b", to: "a" },
      ],
    });
    expect(Object.keys(positions)).toEqual(["a", "b"]);
  });

  it("names new nodes after their type, uniquely", () => {
    expect(freshId("data.set", [])).toBe("set");
    expect(freshId("data.set", ["set", "set_2"])).toBe("set_3");
    expect(freshId("http.request", ["set"])).toBe("request");
  });

  it("puts each 422 error on the node and field it names", () => {
    const { nodes, graph } = errorsByNode(
      [
        { field: "definition.nodes[1].params.condition", message: "node `check`: is required" },
        { field: "definition.nodes[2].type", message: "node `yes`: unknown node type `nope`" },
        { field: "definition.nodes[2].credential_id", message: "node `yes`: no such credential" },
        { field: "definition.nodes", message: "must have exactly one trigger node" },
        { field: "definition.connections[0].output", message: "`x` is not an output" },
        { field: "definition.nodes[9].params.url", message: "out of range" },
      ],
      BRANCHING,
    );
    expect(nodes).toEqual({
      check: { condition: "is required" },
      yes: { "": "type: unknown node type `nope`", credential_id: "no such credential" },
    });
    expect(graph).toEqual([
      "definition.nodes: must have exactly one trigger node",
      "definition.connections[0].output: `x` is not an output",
      "definition.nodes[9].params.url: out of range",
    ]);
  });
});
