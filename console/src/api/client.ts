// The typed API client: openapi-fetch over the types generated from the server's
// OpenAPI document (schema.d.ts), with what every call needs added by middleware —
// the bearer token, the active workspace, one refresh-and-retry on an expired token —
// and `call`, which turns an answer into its data or throws an `ApiProblem`.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { paths } from "./schema";
import { ApiProblem } from "./problem";

/** What the client asks the session for. */
export interface SessionPort {
  /** The access token, if signed in. */
  accessToken(): string | null;
  /** The workspace requests act in (`X-Workspace-Id`), if one is chosen. */
  workspaceId(): string | null;
  /** Gets new tokens after a 401; resolves whether it succeeded. */
  refresh(): Promise<boolean>;
}

/** The generated client's type. */
export type Api = Client<paths>;

/** Routes that never carry the bearer token (they are how one gets it). */
const PUBLIC_AUTH = ["/api/auth/login", "/api/auth/register", "/api/auth/refresh", "/api/auth/logout"];

/** A client with the session's middleware. `fetcher` is looked up at each call, so tests
 * may replace the global `fetch`. */
export function createApi(session: SessionPort, baseUrl = ""): Api {
  const client = createClient<paths>({
    baseUrl,
    fetch: (request: Request) => globalThis.fetch(request),
  });
  client.use(sessionMiddleware(session));
  return client;
}

/** Adds the token and workspace to each request; after a 401 on a request that carried
 * a token, refreshes once and sends the request again with the new token. */
export function sessionMiddleware(session: SessionPort): Middleware {
  const retries = new Map<string, Request>();
  const authorise = (request: Request) => {
    const token = session.accessToken();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    const workspace = session.workspaceId();
    if (workspace && !request.headers.has("X-Workspace-Id")) {
      request.headers.set("X-Workspace-Id", workspace);
    }
  };
  return {
    onRequest({ request, schemaPath, id }) {
      if (PUBLIC_AUTH.includes(schemaPath)) return request;
      authorise(request);
      if (request.headers.has("Authorization")) retries.set(id, request.clone());
      return request;
    },
    async onResponse({ response, id }) {
      const original = retries.get(id);
      retries.delete(id);
      if (response.status !== 401 || !original) return response;
      if (!(await session.refresh())) return response;
      authorise(original);
      return globalThis.fetch(original);
    },
    onError({ id }) {
      retries.delete(id);
    },
  };
}

/** The outcome of an openapi-fetch call. */
interface Outcome<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Awaits a call and returns its data, or throws the `ApiProblem` it answered. A 204
 * resolves `undefined`. */
export async function call<T>(pending: Promise<Outcome<T>>): Promise<T> {
  let outcome: Outcome<T>;
  try {
    outcome = await pending;
  } catch (error) {
    throw ApiProblem.from(error);
  }
  if (outcome.response.ok) return outcome.data as T;
  throw ApiProblem.from(outcome.error, outcome.response);
}
