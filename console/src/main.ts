import { createApp } from "vue";
import { createPinia } from "pinia";
import App from "./App.vue";
import { createConsoleRouter } from "./router";
import "./styles.css";

const app = createApp(App);
const pinia = createPinia();
app.use(pinia);
app.use(createConsoleRouter());
app.mount("#app");
