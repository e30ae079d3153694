import { HttpError } from "@userapi/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { apiKey } from "./api";
import { App } from "./App";
import "./styles.css";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A problem answer (4xx) will not change by asking again; a lost connection or a 5xx may.
      retry: (failures, error) => failures < 2 && !(error instanceof HttpError && error.status < 500),
    },
  },
});

async function start() {
  if (import.meta.env.MODE === "mock") {
    // Only the mock build loads MSW and the handlers.
    const [{ setupWorker }, { createMockHandlers, mockKeys }] = await Promise.all([
      import("msw/browser"),
      import("@userapi/client/mocks"),
    ]);
    await setupWorker(...createMockHandlers()).start({ onUnhandledRequest: "bypass", quiet: true });
    if (!apiKey.get()) apiKey.set(mockKeys.admin);
  }
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <App />
      </QueryClientProvider>
    </StrictMode>,
  );
}

void start();
