// Entry point. The loopback downgrade must wrap WebSocket and fetch before Amplify is evaluated,
// so it is imported first (esbuild keeps ES module evaluation order).
import "./loopback.js";
import { main } from "./app.js";

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", main);
} else {
  main();
}
