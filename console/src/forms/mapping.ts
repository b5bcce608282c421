// A group → role mapping (SSO's and LDAP's `role_mapping`) edited as text: one
// `group = role` per line.

/** The lines of a mapping, one `group = role` each. */
export function mappingText(mapping: Record<string, string>): string {
  return Object.entries(mapping)
    .map(([group, role]) => `${group} = ${role}`)
    .join("\n");
}

/** The mapping the text stands for, or the first line that is not `group = role`. The
 * group is what comes before the last `=` (an LDAP DN holds `=` itself). Roles are
 * checked by the server. */
export function parseMapping(text: string): { mapping: Record<string, string>; error?: string } {
  const mapping: Record<string, string> = {};
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.lastIndexOf("=");
    const group = at > 0 ? line.slice(0, at).trim() : "";
    const role = at > 0 ? line.slice(at + 1).trim() : "";
    if (!group || !role) return { mapping, error: `line ${index + 1} is not \`group = role\`` };
    mapping[group] = role;
  }
  return { mapping };
}

/** A comma- or space-separated list, without empty items. */
export function listOf(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}
