// A small fetch wrapper for the OMO JSON API: cookie session, CSRF header, problem+json errors.

export class ApiError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || String(problem.status));
    this.problem = problem;
  }
}

export async function call(method, path, body, { headers = {}, raw = false } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { "X-OMO-CSRF": "1", Accept: "application/json", ...headers },
  };
  if (body !== undefined) {
    if (raw) {
      init.body = body;
    } else {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  const response = await fetch(path, init);
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const payload = isJson ? await response.json() : null;
  if (!response.ok) {
    throw new ApiError(payload || { status: response.status, title: response.statusText });
  }
  return payload;
}

export function problemText(error) {
  const problem = error.problem || {};
  const parts = [problem.title, problem.detail].filter(Boolean);
  if (Array.isArray(problem.errors)) {
    for (const item of problem.errors) parts.push(`${item.loc.slice(1).join(".")}: ${item.msg}`);
  }
  return parts.join(" — ") || String(error.message || error);
}
