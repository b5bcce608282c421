import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createPinia, setActivePinia } from "pinia";
import { REFRESH_MARGIN_SECONDS, tokenWorkspace, useSession } from "./session";

const WS_DEFAULT = "0193c7a2-0000-7000-8000-00000000000a";
const WS_OTHER = "0193c7a2-0000-7000-8000-00000000000b";

function tokens(n: number, expiresIn = 900) {
  return { access_token: `access-${n}`, refresh_token: `refresh-${n}`, token_type: "Bearer", expires_in: expiresIn };
}

const ME = {
  id: "0193c7a2-0000-7000-8000-000000000001",
  email: "ada@example.com",
  display_name: "Ada",
  default_workspace_id: WS_DEFAULT,
  created_at: "2026-12-01T00:00:00Z",
  memberships: [
    { workspace_id: WS_OTHER, name: "Other", role: "editor" },
    { workspace_id: WS_DEFAULT, name: "Ada's", role: "owner" },
  ],
};

function answer(status: number, body?: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": status >= 400 ? "application/problem+json" : "application/json" },
  });
}

/** A fake server: refresh tokens rotate (each is accepted once), like the real one. */
function server() {
  const calls: { path: string; body: unknown; auth: string | null }[] = [];
  let issued = 1;
  const spent = new Set<string>();
  const fetch = vi.fn(async (request: Request) => {
    const path = new URL(request.url).pathname;
    const text = await request.text();
    const body = text ? JSON.parse(text) : undefined;
    calls.push({ path, body, auth: request.headers.get("Authorization") });
    switch (path) {
      case "/api/auth/register":
        return (body as { password: string }).password.length < 12
          ? answer(422, {
              type: "about:blank",
              title: "Validation failed",
              status: 422,
              code: "validation_failed",
              errors: [{ field: "password", message: "at least 12 characters" }],
            })
          : answer(201, { ...ME, memberships: undefined });
      case "/api/auth/login":
        return answer(200, tokens(issued));
      case "/api/auth/refresh": {
        const token = (body as { refresh_token: string }).refresh_token;
        if (spent.has(token) || token !== `refresh-${issued}`) {
          return answer(401, { type: "about:blank", title: "Unauthorized", status: 401, code: "invalid_refresh_token" });
        }
        spent.add(token);
        issued += 1;
        return answer(200, tokens(issued));
      }
      case "/api/auth/ldap/login":
      case "/api/auth/sso/exchange":
        // Tokens active in another workspace than the user's default.
        return answer(200, { ...tokens(issued), access_token: jwt({ sub: ME.id, wid: WS_OTHER }) });
      case "/api/auth/logout":
        return answer(204);
      case "/api/auth/me":
        return answer(200, ME);
      default:
        return answer(404, { type: "about:blank", title: "Not Found", status: 404, code: "not_found" });
    }
  });
  return { fetch, calls };
}

/** An unsigned JWT-shaped token with `claims` (the console never verifies one). */
function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}.signature`;
}

beforeEach(() => {
  setActivePinia(createPinia());
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("the session", () => {
  it("keeps the tokens in memory only and acts in the default workspace", async () => {
    const fake = server();
    vi.stubGlobal("fetch", fake.fetch);
    const session = useSession();
    await session.login("ada@example.com", "correct horse battery");
    expect(session.signedIn).toBe(true);
    expect(session.accessToken).toBe("access-1");
    expect(session.workspaceId).toBe(WS_DEFAULT);
    expect(session.workspace?.name).toBe("Ada's");
    expect(fake.calls.map((c) => c.path)).toEqual(["/api/auth/login", "/api/auth/me"]);
    expect(fake.calls[1]!.auth).toBe("Bearer access-1");
    expect(localStorage.length).toBe(0);
    expect(sessionStorage.length).toBe(0);
    expect(document.cookie).toBe("");
  });

  it("refreshes a minute before the access token expires", async () => {
    const fake = server();
    vi.stubGlobal("fetch", fake.fetch);
    const session = useSession();
    await session.login("ada@example.com", "pw");
    await vi.advanceTimersByTimeAsync((900 - REFRESH_MARGIN_SECONDS) * 1000 - 10);
    expect(fake.calls.some((c) => c.path === "/api/auth/refresh")).toBe(false);
    await vi.advanceTimersByTimeAsync(20);
    expect(fake.calls.filter((c) => c.path === "/api/auth/refresh")).toHaveLength(1);
    expect(session.accessToken).toBe("access-2");
    // And again before the new one expires, with the rotated refresh token.
    await vi.advanceTimersByTimeAsync((900 - REFRESH_MARGIN_SECONDS) * 1000);
    expect(fake.calls.filter((c) => c.path === "/api/auth/refresh").map((c) => c.body)).toEqual([
      { refresh_token: "refresh-1" },
      { refresh_token: "refresh-2" },
    ]);
    expect(session.accessToken).toBe("access-3");
  });

  it("shares one refresh among concurrent callers (a refresh token is spent once)", async () => {
    const fake = server();
    vi.stubGlobal("fetch", fake.fetch);
    const session = useSession();
    await session.login("ada@example.com", "pw");
    const outcomes = await Promise.all([session.refresh(), session.refresh(), session.refresh()]);
    expect(outcomes).toEqual([true, true, true]);
    expect(fake.calls.filter((c) => c.path === "/api/auth/refresh")).toHaveLength(1);
    expect(session.signedIn).toBe(true);
  });

  it("ends the session when the refresh is refused", async () => {
    const fake = server();
    vi.stubGlobal("fetch", fake.fetch);
    const session = useSession();
    await session.login("ada@example.com", "pw");
    await session.refresh();
    // Another tab or a thief used the token first: the server refuses it.
    fake.fetch.mockImplementationOnce(async () =>
      answer(401, { type: "about:blank", title: "Unauthorized", status: 401, code: "invalid_refresh_token" }),
    );
    expect(await session.refresh()).toBe(false);
    expect(session.signedIn).toBe(false);
    expect(session.me).toBeNull();
    expect(session.workspaceId).toBeNull();
  });

  it("switches only to a workspace the user belongs to", async () => {
    vi.stubGlobal("fetch", server().fetch);
    const session = useSession();
    await session.login("ada@example.com", "pw");
    session.switchWorkspace(WS_OTHER);
    expect(session.workspaceId).toBe(WS_OTHER);
    session.switchWorkspace("0193c7a2-0000-7000-8000-0000000000ff");
    expect(session.workspaceId).toBe(WS_OTHER);
    // A reload of the user keeps the chosen workspace.
    await session.loadMe();
    expect(session.workspaceId).toBe(WS_OTHER);
  });

  it("logs out on the server and forgets the tokens", async () => {
    const fake = server();
    vi.stubGlobal("fetch", fake.fetch);
    const session = useSession();
    await session.login("ada@example.com", "pw");
    await session.logout();
    expect(session.signedIn).toBe(false);
    const logout = fake.calls.find((c) => c.path === "/api/auth/logout");
    expect(logout?.body).toEqual({ refresh_token: "refresh-1" });
    expect(logout?.auth).toBeNull();
    // No refresh is left scheduled.
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(fake.calls.some((c) => c.path === "/api/auth/refresh")).toBe(false);
  });

  it("signs in after registering, and shows the server's field errors", async () => {
    const fake = server();
    vi.stubGlobal("fetch", fake.fetch);
    const session = useSession();
    const failure = await session.register("ada@example.com", "short", "Ada").catch((e: unknown) => e);
    expect((failure as { fieldError(f: string): string | undefined }).fieldError("password")).toBe("at least 12 characters");
    expect(session.signedIn).toBe(false);
    await session.register("ada@example.com", "long enough password", "Ada");
    expect(session.signedIn).toBe(true);
    expect(fake.calls.map((c) => c.path)).toEqual([
      "/api/auth/register",
      "/api/auth/register",
      "/api/auth/login",
      "/api/auth/me",
    ]);
  });

  it("signs in through the directory or single sign-on in the workspace the tokens name", async () => {
    const fake = server();
    vi.stubGlobal("fetch", fake.fetch);
    const session = useSession();
    await session.ldapLogin("acme", "ada", "pw");
    expect(session.workspaceId).toBe(WS_OTHER);
    expect(fake.calls[0]).toMatchObject({ path: "/api/auth/ldap/login", body: { workspace: "acme", username: "ada", password: "pw" } });
    await session.logout();
    await session.exchangeSsoTicket("ticket-1");
    expect(session.workspaceId).toBe(WS_OTHER);
    expect(fake.calls.find((c) => c.path === "/api/auth/sso/exchange")?.body).toEqual({ ticket: "ticket-1" });
  });

  it("reads the workspace claim of a token, and nothing from a malformed one", () => {
    expect(tokenWorkspace(jwt({ wid: WS_DEFAULT }))).toBe(WS_DEFAULT);
    expect(tokenWorkspace(jwt({ sub: "x" }))).toBeNull();
    expect(tokenWorkspace("not-a-jwt")).toBeNull();
    expect(tokenWorkspace("a.%%%.c")).toBeNull();
  });
});
