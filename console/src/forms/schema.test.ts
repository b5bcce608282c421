import { describe, expect, it } from "vitest";
import { mount } from "@vue/test-utils";
import { draftOf, emptyDraft, fieldsOf, valueOf, type JsonSchema } from "./schema";
import SchemaForm from "./SchemaForm.vue";

// The SMTP credential kind's schema, as GET /api/workflows/credentials/types gives it.
const SMTP: JsonSchema = {
  type: "object",
  properties: {
    host: { type: "string", minLength: 1 } as JsonSchema,
    port: { type: "integer", minimum: 1, maximum: 65535 },
    username: { type: ["string", "null"] },
    password: {
      anyOf: [{ type: ["string", "null"] }, { type: "object", properties: { secret_ref: { type: "object" } } }],
      writeOnly: true,
      "x-secret": true,
    },
    tls_mode: { type: "string", enum: ["none", "starttls", "tls"], default: "starttls" },
    verify: { type: "boolean", default: true },
    headers: { type: "object", description: "Extra headers" },
  },
  required: ["host", "port"],
};

describe("schema-driven forms", () => {
  it("make one field per property, of the kind its schema says", () => {
    const fields = fieldsOf(SMTP);
    expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
      ["host", "text", true],
      ["port", "integer", true],
      ["username", "text", false],
      ["password", "secret", false],
      ["tls_mode", "choice", false],
      ["verify", "boolean", false],
      ["headers", "json", false],
    ]);
    expect(fields.find((f) => f.name === "tls_mode")?.options).toEqual(["none", "starttls", "tls"]);
    expect(fields[0]?.label).toBe("Host");
  });

  it("edit a number-or-template field as text", () => {
    const fields = fieldsOf({ type: "object", properties: { milliseconds: { type: ["integer", "string"] } } });
    expect(fields[0]?.kind).toBe("text");
  });

  it("round-trip saved params through a draft", () => {
    const fields = fieldsOf(SMTP);
    const params = { host: "h", port: 25, tls_mode: "none", verify: false, headers: { a: "1" } };
    const draft = draftOf(fields, SMTP, params);
    expect(draft).toMatchObject({ host: "h", port: "25", tls_mode: "none", verify: false });
    expect(valueOf(fields, draft)).toEqual({ value: params, errors: [] });
  });

  it("treat the kind's listed secret fields as secret", () => {
    const fields = fieldsOf({ type: "object", properties: { token: { type: "string" } } }, ["token"]);
    expect(fields[0]?.kind).toBe("secret");
  });

  it("start from the schema's defaults", () => {
    const draft = emptyDraft(fieldsOf(SMTP), SMTP);
    expect(draft).toMatchObject({ host: "", tls_mode: "starttls", verify: true });
  });

  it("start a required choice without a default on its first option", () => {
    const schema: JsonSchema = {
      type: "object",
      properties: { mode: { type: "string", enum: ["a", "b"] }, optional: { type: "string", enum: ["x"] } },
      required: ["mode"],
    };
    expect(emptyDraft(fieldsOf(schema), schema)).toEqual({ mode: "a", optional: "" });
  });

  it("turn a filled draft into typed data, leaving empty optional fields out", () => {
    const fields = fieldsOf(SMTP);
    const { value, errors } = valueOf(fields, {
      host: "smtp.example.com",
      port: "587",
      username: "",
      password: "s3cret",
      tls_mode: "tls",
      verify: false,
      headers: '{"x-a": "1"}',
    });
    expect(errors).toEqual([]);
    expect(value).toEqual({
      host: "smtp.example.com",
      port: 587,
      password: "s3cret",
      tls_mode: "tls",
      verify: false,
      headers: { "x-a": "1" },
    });
  });

  it("name each field the draft cannot become a value for", () => {
    const { errors } = valueOf(fieldsOf(SMTP), { host: " ", port: "70000", headers: "{", verify: true });
    expect(errors).toEqual([
      { field: "host", message: "is required" },
      { field: "port", message: "must be at most 65535" },
      { field: "headers", message: "must be JSON" },
    ]);
    // A number input's v-model holds a number once edited.
    expect(valueOf(fieldsOf(SMTP), { host: "h", port: 70000 }).errors).toEqual([
      { field: "port", message: "must be at most 65535" },
    ]);
    expect(valueOf(fieldsOf(SMTP), { host: "h", port: 587 }).value).toEqual({ host: "h", port: 587, verify: false });
    expect(valueOf(fieldsOf(SMTP), { host: "h", port: "2.5" }).errors).toEqual([
      { field: "port", message: "must be a whole number" },
    ]);
  });

  it("render secret inputs as passwords and show each field's error", async () => {
    const fields = fieldsOf(SMTP);
    const wrapper = mount(SchemaForm, {
      props: { fields, modelValue: emptyDraft(fields, SMTP), errors: { port: "must be at most 65535" } },
    });
    expect(wrapper.find('input[name="password"]').attributes("type")).toBe("password");
    expect(wrapper.find('input[name="port"]').attributes("type")).toBe("number");
    expect(wrapper.find('select[name="tls_mode"]').exists()).toBe(true);
    expect(wrapper.find('input[name="verify"]').attributes("type")).toBe("checkbox");
    expect(wrapper.text()).toContain("must be at most 65535");
    await wrapper.find('input[name="host"]').setValue("mail.example.com");
    // The inputs edit the page's draft in place.
    expect((wrapper.props("modelValue") as Record<string, string>).host).toBe("mail.example.com");
  });

  it("does not require a secret again when editing (empty keeps the stored one)", () => {
    const fields = fieldsOf(SMTP);
    const wrapper = mount(SchemaForm, { props: { fields, modelValue: emptyDraft(fields, SMTP), editing: true } });
    const password = wrapper.find('input[name="password"]');
    expect(password.attributes("required")).toBeUndefined();
    expect(password.attributes("placeholder")).toBe("unchanged");
  });
});
