import { createRouter, createWebHistory, type RouteRecordRaw } from "vue-router";
import { useSession } from "./stores/session";

// Pages are chunks of their own, loaded when first visited (the sign-in page stays small).
const routes: RouteRecordRaw[] = [
  { path: "/sign-in", name: "sign-in", component: () => import("./views/SignIn.vue"), meta: { public: true } },
  { path: "/register", name: "register", component: () => import("./views/Register.vue"), meta: { public: true } },
  { path: "/sso", name: "sso", component: () => import("./views/SsoLanding.vue"), meta: { public: true } },
  { path: "/", name: "dashboard", component: () => import("./views/Dashboard.vue") },
  { path: "/workflows", name: "workflows", component: () => import("./views/Workflows.vue") },
  { path: "/workflows/:id", name: "workflow", component: () => import("./views/WorkflowDetail.vue"), props: true },
  { path: "/workflows/:id/builder", name: "builder", component: () => import("./builder/Builder.vue"), props: true },
  { path: "/executions", name: "executions", component: () => import("./views/Executions.vue") },
  { path: "/executions/:id", name: "execution", component: () => import("./views/ExecutionDetail.vue"), props: true },
  { path: "/credentials", name: "credentials", component: () => import("./views/Credentials.vue") },
  { path: "/webhooks", name: "webhooks", component: () => import("./views/Webhooks.vue") },
  { path: "/conversations", name: "conversations", component: () => import("./views/Conversations.vue") },
  { path: "/webhooks/:id", name: "webhook", component: () => import("./views/WebhookDetail.vue"), props: true },
  { path: "/settings/plan", name: "plan", component: () => import("./views/Plans.vue") },
  { path: "/settings/api-keys", name: "api-keys", component: () => import("./views/ApiKeys.vue") },
  { path: "/settings/environments", name: "environments", component: () => import("./views/Environments.vue") },
  { path: "/settings/members", name: "members", component: () => import("./views/Members.vue") },
  { path: "/settings/activity", name: "activity", component: () => import("./views/Activity.vue") },
  { path: "/settings/usage", name: "usage", component: () => import("./views/Usage.vue") },
  { path: "/settings/alerts", name: "alerts", component: () => import("./views/Alerts.vue") },
  { path: "/settings/log-destinations", name: "log-destinations", component: () => import("./views/LogDestinations.vue") },
  { path: "/settings/integrations", name: "integrations", component: () => import("./views/Integrations.vue") },
  { path: "/settings/integrations/secret-providers", name: "secret-providers", component: () => import("./views/SecretProviders.vue") },
  { path: "/settings/integrations/sso", name: "sso-settings", component: () => import("./views/Sso.vue") },
  { path: "/settings/integrations/ldap", name: "ldap-settings", component: () => import("./views/Ldap.vue") },
  { path: "/settings/integrations/connectors", name: "connectors", component: () => import("./views/Connectors.vue") },
  { path: "/settings/workspace", name: "workspace-settings", component: () => import("./views/WorkspaceSettings.vue") },
  { path: "/account/workspaces", name: "workspaces", component: () => import("./views/Workspaces.vue") },
  { path: "/account/settings", name: "user-settings", component: () => import("./views/UserSettings.vue") },
  { path: "/account/sessions", name: "sessions", component: () => import("./views/Sessions.vue") },
  { path: "/:pathMatch(.*)*", name: "not-found", component: () => import("./views/NotFound.vue"), meta: { public: true } },
];

/** The console's router: every page but the public ones needs a session; a page asked
 * for while signed out comes back after signing in. */
export function createConsoleRouter() {
  const router = createRouter({ history: createWebHistory(), routes });
  router.beforeEach((to) => {
    const session = useSession();
    if (!to.meta.public && !session.signedIn) {
      return { name: "sign-in", query: to.fullPath === "/" ? {} : { next: to.fullPath } };
    }
    return true;
  });
  return router;
}
