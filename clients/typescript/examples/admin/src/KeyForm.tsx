import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";

import { apiKey } from "./api";

/** The API key, kept in session storage; saving one reloads every query with it. */
export function KeyForm() {
  const qc = useQueryClient();
  const [key, setKey] = useState(apiKey.get);
  return (
    <form
      className="key"
      onSubmit={(e) => {
        e.preventDefault();
        apiKey.set(key.trim());
        void qc.resetQueries();
      }}
    >
      <label>
        API key
        <input type="password" autoComplete="off" spellCheck={false} value={key} onChange={(e) => setKey(e.target.value)} />
      </label>
      <button type="submit">Use key</button>
    </form>
  );
}
