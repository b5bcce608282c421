// The kinds of secret provider the API takes (`POST /api/settings/secret-providers`): the
// fields of each kind's `config` and of each way it signs in (`credentials`), as the JSON
// Schemas the generated forms read. The server checks them again and names a wrong field
// `config.<field>` or `credentials.<field>`.
import type { JsonSchema } from "./schema";

/** One way a provider signs in: the fields of its `credentials`, all write-only. */
export interface SignIn {
  value: string;
  label: string;
  credentials: JsonSchema;
}

export interface ProviderKind {
  value: "aws_secrets_manager" | "vault";
  label: string;
  config: JsonSchema;
  signIns: SignIn[];
}

const secret = (description?: string): JsonSchema => ({ type: "string", writeOnly: true, description });

export const PROVIDER_KINDS: ProviderKind[] = [
  {
    value: "vault",
    label: "HashiCorp Vault (KV v2)",
    config: {
      type: "object",
      required: ["address"],
      properties: {
        address: { type: "string", title: "Address", description: "https://vault.example.com:8200" },
        mount: { type: "string", title: "KV mount", description: "Default: secret" },
        namespace: { type: "string", title: "Namespace", description: "Vault Enterprise only" },
      },
    },
    signIns: [
      {
        value: "token",
        label: "Token",
        credentials: { type: "object", required: ["token"], properties: { token: { ...secret(), title: "Token" } } },
      },
      {
        value: "approle",
        label: "AppRole",
        credentials: {
          type: "object",
          required: ["role_id", "secret_id"],
          properties: { role_id: { ...secret(), title: "Role ID" }, secret_id: { ...secret(), title: "Secret ID" } },
        },
      },
    ],
  },
  {
    value: "aws_secrets_manager",
    label: "AWS Secrets Manager",
    config: {
      type: "object",
      required: ["region"],
      properties: {
        region: { type: "string", title: "Region", description: "e.g. eu-west-1" },
        endpoint_url: { type: "string", title: "Endpoint URL", description: "Only for another endpoint than AWS's" },
      },
    },
    signIns: [
      {
        value: "access_key",
        label: "Access key",
        credentials: {
          type: "object",
          required: ["access_key_id", "secret_access_key"],
          properties: {
            access_key_id: { ...secret(), title: "Access key ID" },
            secret_access_key: { ...secret(), title: "Secret access key" },
            session_token: { ...secret("For temporary credentials"), title: "Session token" },
          },
        },
      },
    ],
  },
];
