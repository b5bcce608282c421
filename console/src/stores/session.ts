// The session: who is signed in, their tokens and the workspace they act in.
//
// Tokens live in this store's memory only — never in localStorage, sessionStorage or a
// cookie script can read (docs/console.md says why). A reload signs the user out. The
// access token is refreshed a minute before it expires, and after a 401 (the client's
// middleware asks `refresh`); concurrent refreshes share one request, since a refresh
// token is spent by its first use and presenting it twice would revoke the family.
import { defineStore } from "pinia";
import { computed, ref, shallowRef } from "vue";
import createClient from "openapi-fetch";
import type { components, paths } from "../api/schema";
import { call, createApi, type Api } from "../api/client";

type Me = components["schemas"]["MeResponse"];
type Tokens = components["schemas"]["TokenResponse"];

/** Refresh this many seconds before the access token expires. */
export const REFRESH_MARGIN_SECONDS = 60;

export const useSession = defineStore("session", () => {
  const accessToken = ref<string | null>(null);
  const refreshToken = ref<string | null>(null);
  const me = ref<Me | null>(null);
  const workspaceId = ref<string | null>(null);
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  let refreshing: Promise<boolean> | null = null;

  // Sign-in, refresh and logout go through a client without the session middleware.
  const auth = createClient<paths>({ fetch: (request: Request) => globalThis.fetch(request) });
  const api: Api = createApi({
    accessToken: () => accessToken.value,
    workspaceId: () => workspaceId.value,
    refresh: () => refresh(),
  });

  const signedIn = computed(() => accessToken.value !== null);
  const memberships = computed(() => me.value?.memberships ?? []);
  const workspace = computed(
    () => memberships.value.find((m) => m.workspace_id === workspaceId.value) ?? null,
  );

  function accept(tokens: Tokens) {
    accessToken.value = tokens.access_token;
    refreshToken.value = tokens.refresh_token;
    clearTimeout(refreshTimer);
    const delay = Math.max(tokens.expires_in - REFRESH_MARGIN_SECONDS, 5) * 1000;
    refreshTimer = setTimeout(() => void refresh(), delay);
  }

  function forget() {
    clearTimeout(refreshTimer);
    accessToken.value = null;
    refreshToken.value = null;
    me.value = null;
    workspaceId.value = null;
  }

  /** Starts a session with `tokens`, in the workspace they were issued for. */
  async function begin(tokens: Tokens) {
    accept(tokens);
    workspaceId.value = tokenWorkspace(tokens.access_token);
    await loadMe();
  }

  async function login(email: string, password: string) {
    await begin(await call(auth.POST("/api/auth/login", { body: { email, password } })));
  }

  /** Signs in with a workspace's directory (LDAP): `workspace` is its id or slug. */
  async function ldapLogin(workspace: string, username: string, password: string) {
    await begin(await call(auth.POST("/api/auth/ldap/login", { body: { workspace, username, password } })));
  }

  /** Redeems the one-use ticket single sign-on came back with. */
  async function exchangeSsoTicket(ticket: string) {
    await begin(await call(auth.POST("/api/auth/sso/exchange", { body: { ticket } })));
  }

  async function register(email: string, password: string, displayName: string) {
    await call(
      auth.POST("/api/auth/register", {
        body: { email, password, display_name: displayName },
      }),
    );
    await login(email, password);
  }

  /** Loads the user; keeps the chosen workspace (at sign-in: the token's) while still a
   * member of it, else takes the default one (or the first membership). */
  async function loadMe() {
    const found = await call(api.GET("/api/auth/me"));
    me.value = found;
    const ids = found.memberships.map((m) => m.workspace_id);
    if (!workspaceId.value || !ids.includes(workspaceId.value)) {
      workspaceId.value = found.default_workspace_id ?? ids[0] ?? null;
    }
  }

  function switchWorkspace(id: string) {
    if (memberships.value.some((m) => m.workspace_id === id)) workspaceId.value = id;
  }

  /** New tokens for the refresh token; on failure the session ends. */
  function refresh(): Promise<boolean> {
    if (refreshing) return refreshing;
    const token = refreshToken.value;
    if (!token) return Promise.resolve(false);
    refreshing = call(auth.POST("/api/auth/refresh", { body: { refresh_token: token } }))
      .then((tokens) => {
        accept(tokens);
        return true;
      })
      .catch(() => {
        forget();
        return false;
      })
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  }

  /** Ends this session on the server (best effort) and forgets it here. */
  async function logout() {
    const token = refreshToken.value;
    forget();
    if (token) {
      await call(auth.POST("/api/auth/logout", { body: { refresh_token: token } })).catch(
        () => undefined,
      );
    }
  }

  return {
    accessToken,
    me,
    workspaceId,
    signedIn,
    memberships,
    workspace,
    api: shallowRef(api),
    login,
    ldapLogin,
    exchangeSsoTicket,
    register,
    loadMe,
    switchWorkspace,
    refresh,
    logout,
  };
});

/** The workspace an access token was issued for (its `wid` claim), read without
 * verifying it: the server verifies every use; this only picks the first workspace. */
export function tokenWorkspace(token: string): string | null {
  try {
    const payload = token.split(".")[1] ?? "";
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const wid: unknown = (JSON.parse(json) as { wid?: unknown }).wid;
    return typeof wid === "string" ? wid : null;
  } catch {
    return null;
  }
}
