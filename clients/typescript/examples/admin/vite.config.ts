import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `--mode mock` builds or serves the app with the package's MSW handlers in
// the browser instead of a service; its folder of static files holds MSW's
// service worker, which the real build does not ship.
export default defineConfig(({ mode }) => ({
  plugins: [react()],
  publicDir: mode === "mock" ? "mock-public" : false,
  build: { outDir: mode === "mock" ? "dist-mock" : "dist" },
  resolve: {
    // @userapi/client is linked from ../.., whose own node_modules hold
    // copies of these for its tests: the app must use one React, one query
    // cache and one MSW, its own.
    dedupe: ["react", "react-dom", "@tanstack/react-query", "msw"],
  },
  // USERAPI_CORS_ORIGINS=http://localhost:5173 lets the dev server's pages call the service.
  server: { port: 5173, strictPort: true },
  preview: { port: 4173, strictPort: true },
}));
