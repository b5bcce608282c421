import { describe, expect, it } from "vitest";
import { listOf, mappingText, parseMapping } from "./mapping";

describe("role mappings as text", () => {
  it("reads one group = role per line, an LDAP DN with its own = signs", () => {
    expect(parseMapping("admins = admin\n\n cn=ops,ou=groups,dc=example = editor \n")).toEqual({
      mapping: { admins: "admin", "cn=ops,ou=groups,dc=example": "editor" },
    });
  });

  it("names the first line that is not a mapping", () => {
    expect(parseMapping("admins = admin\nviewers").error).toBe("line 2 is not `group = role`");
    expect(parseMapping("= admin").error).toBe("line 1 is not `group = role`");
  });

  it("writes a mapping back as it reads it", () => {
    const mapping = { admins: "admin", "cn=ops,dc=example": "viewer" };
    expect(parseMapping(mappingText(mapping)).mapping).toEqual(mapping);
  });

  it("splits lists on commas and spaces", () => {
    expect(listOf(" openid, email  profile,,")).toEqual(["openid", "email", "profile"]);
  });
});
