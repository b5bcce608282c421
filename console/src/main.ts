import { createApp } from "vue";
import { createPinia } from "pinia";
import App from "./App.vue";
import { createConsoleRouter } from "./router";
import "./styles.css";

// Single sign-on comes back to `/#/sso?ticket=…` (the server's landing address); the
// console's router uses paths, so the hash becomes `/sso?ticket=…` before it starts.
if (window.location.hash.startsWith("#/sso?")) {
  window.history.replaceState(null, "", `/sso?${window.location.hash.slice("#/sso?".length)}`);
}

const app = createApp(App);
const pinia = createPinia();
app.use(pinia);
app.use(createConsoleRouter());
app.mount("#app");
