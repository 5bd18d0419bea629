// Requests to the JSON API: same origin only, the session cookie goes along. A 401 means
// the login ran out (or the token changed): the page reloads and shows the login form.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function get(path) {
  let resp;
  try {
    resp = await fetch(`/api/v1/${path}`, { credentials: "same-origin", cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, `cannot reach the netban daemon (${e.message})`);
  }
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // An error page that is not JSON: keep the status.
  }
  if (resp.status === 401 && document.body.dataset.auth === "token") {
    location.reload();
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, (body && body.error) || `${resp.status} ${resp.statusText}`);
  }
  return body;
}
