// Forms generated from a JSON Schema (a credential kind's `data`, a node's `params`): the
// fields an object schema describes, and the typed value a filled form stands for.

/** The part of JSON Schema the forms read. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  description?: string;
  title?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  writeOnly?: boolean;
  "x-secret"?: boolean;
}

/** How a field is edited. */
export type FieldKind = "text" | "secret" | "integer" | "number" | "boolean" | "choice" | "json";

/** One field of a generated form. */
export interface Field {
  name: string;
  label: string;
  kind: FieldKind;
  required: boolean;
  description?: string;
  options: string[];
  minimum?: number;
  maximum?: number;
}

/** What the inputs hold: text for most kinds, a boolean for a checkbox, and a number
 * once a number input was edited (Vue's `v-model` casts it). */
export type Draft = Record<string, string | number | boolean>;

/** A field the draft cannot become a value for, and why. */
export interface DraftError {
  field: string;
  message: string;
}

function types(schema: JsonSchema): string[] {
  if (schema.type === undefined) return [];
  return (Array.isArray(schema.type) ? schema.type : [schema.type]).filter((t) => t !== "null");
}

/** The branch a form edits: the schema itself, or for `anyOf`/`oneOf` (a secret that may
 * also be a `secret_ref` object) its first branch of a simple type. */
function editable(schema: JsonSchema): JsonSchema {
  const branches = schema.anyOf ?? schema.oneOf;
  if (!branches || types(schema).length) return schema;
  return branches.find((branch) => types(branch).some((t) => t !== "object" && t !== "array")) ?? schema;
}

function label(name: string): string {
  const words = name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The fields of an object schema, in its order. `secretFields` (a credential kind's list)
 * and `x-secret`/`writeOnly` properties are secret: their input never shows a value. */
export function fieldsOf(schema: JsonSchema, secretFields: string[] = []): Field[] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, property]) => {
    const branch = editable(property);
    const [type] = types(branch);
    const secret = secretFields.includes(name) || property["x-secret"] === true || property.writeOnly === true;
    const all = types(branch);
    let kind: FieldKind;
    if (branch.enum && branch.enum.every((value) => typeof value === "string")) kind = "choice";
    // A field that is a number or a string (a template) is edited as text.
    else if (type === "string" || (all.includes("string") && all.every((t) => t !== "object" && t !== "array"))) {
      kind = secret ? "secret" : "text";
    }
    else if (type === "integer") kind = "integer";
    else if (type === "number") kind = "number";
    else if (type === "boolean") kind = "boolean";
    else kind = "json";
    return {
      name,
      label: property.title ?? label(name),
      kind,
      required: required.has(name),
      description: property.description,
      options: kind === "choice" ? (branch.enum as string[]) : [],
      minimum: branch.minimum,
      maximum: branch.maximum,
    };
  });
}

/** An empty draft: defaults where the schema has them, and a required choice on its
 * first option (a select always shows one). */
export function emptyDraft(fields: Field[], schema: JsonSchema): Draft {
  const draft: Draft = {};
  for (const field of fields) {
    const fallback = schema.properties?.[field.name]?.default;
    if (field.kind === "boolean") draft[field.name] = fallback === true;
    else if (fallback === undefined) draft[field.name] = field.kind === "choice" && field.required ? (field.options[0] ?? "") : "";
    else draft[field.name] = typeof fallback === "string" ? fallback : JSON.stringify(fallback);
  }
  return draft;
}

/** The value a draft stands for. An empty optional field is left out (for a secret being
 * edited: keep the stored one); an empty required one, a number that is not one or JSON
 * that does not parse is an error naming the field. */
export function valueOf(fields: Field[], draft: Draft): { value: Record<string, unknown>; errors: DraftError[] } {
  const value: Record<string, unknown> = {};
  const errors: DraftError[] = [];
  for (const field of fields) {
    const raw = draft[field.name];
    if (field.kind === "boolean") {
      value[field.name] = raw === true;
      continue;
    }
    const text = typeof raw === "number" ? String(raw) : typeof raw === "string" ? raw : "";
    if (text.trim() === "") {
      if (field.required) errors.push({ field: field.name, message: "is required" });
      continue;
    }
    if (field.kind === "integer" || field.kind === "number") {
      const number = Number(text);
      if (!Number.isFinite(number) || (field.kind === "integer" && !Number.isInteger(number))) {
        errors.push({ field: field.name, message: field.kind === "integer" ? "must be a whole number" : "must be a number" });
      } else if (field.minimum !== undefined && number < field.minimum) {
        errors.push({ field: field.name, message: `must be at least ${field.minimum}` });
      } else if (field.maximum !== undefined && number > field.maximum) {
        errors.push({ field: field.name, message: `must be at most ${field.maximum}` });
      } else {
        value[field.name] = number;
      }
    } else if (field.kind === "json") {
      try {
        value[field.name] = JSON.parse(text);
      } catch {
        errors.push({ field: field.name, message: "must be JSON" });
      }
    } else {
      value[field.name] = text;
    }
  }
  return { value, errors };
}

/** A draft holding `params` (a saved node's), for editing them again. */
export function draftOf(fields: Field[], schema: JsonSchema, params: Record<string, unknown>): Draft {
  const draft = emptyDraft(fields, schema);
  for (const field of fields) {
    if (!(field.name in params)) continue;
    const value = params[field.name];
    if (field.kind === "boolean") draft[field.name] = value === true;
    else if (value === null || value === undefined) draft[field.name] = "";
    else if (field.kind === "json") draft[field.name] = JSON.stringify(value, null, 2);
    else draft[field.name] = String(value);
  }
  return draft;
}
