// The README's example; `npm run build` compiles it, so it stays correct.
import { createUserApiClient, ProblemError } from "../src/index.js";

export async function example(): Promise<void> {
  // The key comes from `userapi keys create` (make run prints a development one).
  const api = createUserApiClient("http://localhost:8080", { apiKey: process.env.USERAPI_KEY });

  // Create a user: typed body, typed answer.
  const { data: ada, response } = await api.POST("/users", {
    body: { name: "Ada Lovelace", email: "ada@example.com" },
  });
  console.log(ada?.id, response.headers.get("ETag"));

  // Change it only if nobody else did since we read it.
  try {
    await api.PATCH("/users/{id}", {
      params: { path: { id: ada!.id }, header: { "If-Match": response.headers.get("ETag")! } },
      body: { name: "Ada King" },
    });
  } catch (e) {
    if (e instanceof ProblemError && e.status === 412) {
      console.log("someone else changed it first:", e.problem.detail);
    } else if (e instanceof ProblemError && e.status === 422) {
      console.log("bad fields:", e.fieldErrors); // { "body.name": "..." }
    } else {
      throw e;
    }
  }

  // Page through every user.
  let cursor: string | undefined;
  do {
    const { data } = await api.GET("/users", { params: { query: { limit: 100, cursor } } });
    for (const user of data!.items) console.log(user.id, user.email);
    cursor = data!.next_cursor ?? undefined;
  } while (cursor);
}
