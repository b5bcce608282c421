import { describe, expect, it } from "vitest";
import { canonicalJson, diffLines } from "./diff";

describe("the version diff", () => {
  it("keeps common lines and marks the rest", () => {
    expect(diffLines("a\nb\nc", "a\nx\nc\nd")).toEqual([
      { kind: "same", text: "a" },
      { kind: "removed", text: "b" },
      { kind: "added", text: "x" },
      { kind: "same", text: "c" },
      { kind: "added", text: "d" },
    ]);
  });

  it("is all kept for equal texts and all changed for disjoint ones", () => {
    expect(diffLines("a\nb", "a\nb").every((l) => l.kind === "same")).toBe(true);
    expect(diffLines("a", "b").map((l) => l.kind)).toEqual(["removed", "added"]);
  });

  it("compares definitions regardless of key order", () => {
    const before = canonicalJson({ nodes: [{ type: "data.set", id: "a" }], connections: [] });
    const after = canonicalJson({ connections: [], nodes: [{ id: "a", type: "data.set" }] });
    expect(diffLines(before, after).every((l) => l.kind === "same")).toBe(true);
  });
});
