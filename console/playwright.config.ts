import { defineConfig } from "@playwright/test";

// The console end to end, in Debian's Chromium (no browser is downloaded): `cargo xtask
// e2e` starts a server on a fresh test database and passes its address as FLUXOLAB_URL.
const root = typeof process.getuid === "function" && process.getuid() === 0;

export default defineConfig({
  testDir: "e2e",
  timeout: 180_000,
  expect: { timeout: 15_000 },
  workers: 1,
  reporter: "list",
  outputDir: "node_modules/.e2e-results",
  use: {
    baseURL: process.env.FLUXOLAB_URL ?? "http://127.0.0.1:8080",
    viewport: { width: 1440, height: 900 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      // Chromium's sandbox refuses to run as root (CI runs as root).
      args: root ? ["--no-sandbox"] : [],
    },
  },
});
