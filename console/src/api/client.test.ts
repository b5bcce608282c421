import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createApi, type SessionPort } from "./client";
import { ApiProblem } from "./problem";

const ME = {
  id: "0193c7a2-0000-7000-8000-000000000001",
  email: "ada@example.com",
  display_name: "Ada",
  default_workspace_id: null,
  created_at: "2026-12-01T00:00:00Z",
  memberships: [],
};

function json(status: number, body: unknown, type = "application/json"): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": type } });
}

/** A session whose token `refresh` replaces. */
function session(token: string | null, refreshed: string | null = null): SessionPort & { refreshes: number } {
  const port = {
    token,
    refreshes: 0,
    accessToken: () => port.token,
    workspaceId: () => "ws-1",
    refresh: async () => {
      port.refreshes += 1;
      if (refreshed === null) return false;
      port.token = refreshed;
      return true;
    },
  };
  return port;
}

afterEach(() => vi.unstubAllGlobals());

describe("the API client", () => {
  it("sends the bearer token and the active workspace", async () => {
    const fetch = vi.fn<(request: Request) => Promise<Response>>(async () => json(200, ME));
    vi.stubGlobal("fetch", fetch);
    const me = await call(createApi(session("tok-1")).GET("/api/auth/me"));
    expect(me.email).toBe("ada@example.com");
    const request = fetch.mock.calls[0]![0];
    expect(request.url).toMatch(/\/api\/auth\/me$/);
    expect(request.headers.get("Authorization")).toBe("Bearer tok-1");
    expect(request.headers.get("X-Workspace-Id")).toBe("ws-1");
  });

  it("never sends the token to the routes that hand tokens out", async () => {
    const fetch = vi.fn<(request: Request) => Promise<Response>>(async () =>
      json(200, { access_token: "a", refresh_token: "r", token_type: "Bearer", expires_in: 900 }),
    );
    vi.stubGlobal("fetch", fetch);
    await call(createApi(session("tok-1")).POST("/api/auth/login", { body: { email: "a@b.c", password: "x" } }));
    expect(fetch.mock.calls[0]![0].headers.has("Authorization")).toBe(false);
  });

  it("refreshes once after a 401 and retries with the new token", async () => {
    const seen: string[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (request: Request) => {
        seen.push(request.headers.get("Authorization") ?? "");
        return request.headers.get("Authorization") === "Bearer fresh"
          ? json(200, ME)
          : json(401, { type: "about:blank", title: "Unauthorized", status: 401, code: "unauthorized" }, "application/problem+json");
      }),
    );
    const port = session("stale", "fresh");
    const me = await call(createApi(port).GET("/api/auth/me"));
    expect(me.display_name).toBe("Ada");
    expect(seen).toEqual(["Bearer stale", "Bearer fresh"]);
    expect(port.refreshes).toBe(1);
  });

  it("gives up with the 401 problem when the refresh fails", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        json(401, { type: "about:blank", title: "Unauthorized", status: 401, code: "unauthorized", detail: "expired" }, "application/problem+json"),
      ),
    );
    const port = session("stale");
    const failure = await call(createApi(port).GET("/api/auth/me")).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApiProblem);
    expect((failure as ApiProblem).status).toBe(401);
    expect((failure as ApiProblem).detail).toBe("expired");
    expect(port.refreshes).toBe(1);
  });

  it("turns a 422 into a problem that names each field", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        json(
          422,
          {
            type: "https://fluxolab.dev/problems/validation_failed",
            title: "Validation failed",
            status: 422,
            code: "validation_failed",
            detail: "2 fields are invalid",
            request_id: "req-9",
            errors: [
              { field: "name", message: "must not be empty" },
              { field: "scopes", message: "at least one" },
            ],
          },
          "application/problem+json",
        ),
      ),
    );
    const failure = (await call(
      createApi(session("tok")).POST("/api/settings/api/keys", { body: { name: "", scopes: [] } }),
    ).catch((error: unknown) => error)) as ApiProblem;
    expect(failure.code).toBe("validation_failed");
    expect(failure.requestId).toBe("req-9");
    expect(failure.fieldError("name")).toBe("must not be empty");
    expect(failure.fieldError("scopes")).toBe("at least one");
    expect(failure.fieldError("other")).toBeUndefined();
    expect(failure.fieldErrorsUnder("scop")).toEqual({ es: "at least one" });
  });

  it("reports an unreachable server as the network problem", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const failure = (await call(createApi(session("tok")).GET("/api/auth/me")).catch((e: unknown) => e)) as ApiProblem;
    expect(failure).toBeInstanceOf(ApiProblem);
    expect(failure.code).toBe("network");
    expect(failure.detail).toBe("Failed to fetch");
  });

  it("reports a non-problem error body by its status", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" })));
    const failure = (await call(createApi(session("tok")).GET("/api/auth/me")).catch((e: unknown) => e)) as ApiProblem;
    expect(failure.status).toBe(502);
    expect(failure.code).toBe("unexpected_response");
  });
});
