import { defineConfig } from "vitest/config";
import vue from "@vitejs/plugin-vue";

// `npm run dev` serves the console with hot reload and sends `/api` to a running
// `fluxolab serve` (FLUXOLAB_URL, default the address `cargo xtask dev` prints).
const api = process.env.FLUXOLAB_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [vue()],
  build: {
    // Every asset is a file under /assets (no inline data URIs): the server's
    // Content-Security-Policy allows only same-origin scripts, styles and images.
    assetsInlineLimit: 0,
    // A source map is not served: the binary embeds what it ships.
    sourcemap: false,
    reportCompressedSize: true,
    // Read by scripts/budget.mjs (the first page's JavaScript), which then removes it.
    manifest: true,
  },
  server: {
    proxy: {
      "/api": { target: api, changeOrigin: false },
    },
  },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.ts"],
  },
});
