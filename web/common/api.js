// Requests to the exchange and the errors they answer, in words with the Taler code.

/** The exchange's base URL, e.g. `http://host/exchange/` (this file is at web/common/). */
export const exchangeBase = new URL("../../", import.meta.url);

/** A failed request: HTTP status, Taler error code (0 without one), hint and detail. */
export class ApiError extends Error {
  constructor(status, code, hint, detail) {
    super(describe(status, code, hint, detail));
    this.status = status;
    this.code = code;
    this.hint = hint;
    this.detail = detail;
  }
}

function describe(status, code, hint, detail) {
  const said = hint || (status ? `The server answered ${status}` : "The server cannot be reached");
  const words = said.charAt(0).toUpperCase() + said.slice(1);
  const more = detail ? ` (${detail})` : "";
  return code ? `${words}${more}. Error code ${code}.` : `${words}${more}.`;
}

/**
 * Fetches `path` (relative to the exchange base, or absolute) and answers
 * `{status, headers, body}` with `body` parsed JSON (or null when empty). Statuses of 400 and
 * above, and unreachable servers, throw an ApiError; `options` are fetch's.
 */
export async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(new URL(path, exchangeBase), options);
  } catch (cause) {
    if (cause && cause.name === "AbortError") throw cause;
    throw new ApiError(0, 0, "The server cannot be reached", String(cause && cause.message));
  }
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (response.status >= 400) {
    const code = body && typeof body.code === "number" ? body.code : 0;
    throw new ApiError(response.status, code, body && body.hint, body && body.detail);
  }
  return { status: response.status, headers: response.headers, body };
}

/** POSTs `value` as JSON. */
export function postJson(path, value, options = {}) {
  return request(path, {
    ...options,
    method: "POST",
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
    body: JSON.stringify(value),
  });
}

/** The text to show a person for any thrown value. */
export function errorText(error) {
  return error instanceof ApiError ? error.message : `Something went wrong: ${error}.`;
}
