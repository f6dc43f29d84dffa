// The exchange's officer API as the page uses it: signed reads, decisions, errors in words.

/** What each Taler error code the officer may meet means, in words. */
const MEANINGS = {
  22: "the request was not well-formed JSON",
  26: "a value in the request was refused",
  29: "the account hash is malformed",
  1032: "the officer public key is malformed",
  1033: "the exchange did not accept this key's signature",
  1034: "this key is not an active AML officer of this exchange",
  1041: "the exchange does not know this account",
  1825: "the exchange did not accept the decision's signature",
  1826: "this officer may not decide (unknown, disabled or read-only)",
  1827: "a more recent decision is already in force",
};

/** An error answer of the exchange: HTTP status, Taler code and a sentence. */
export class TalerError extends Error {
  constructor(status, body) {
    const code = body?.code;
    const words = MEANINGS[code] ?? body?.hint ?? `the exchange answered ${status}`;
    const name = body?.hint ? ` ${body.hint}` : "";
    const detail = body?.detail ? ` (${body.detail})` : "";
    super(`${words[0].toUpperCase()}${words.slice(1)}${detail}. HTTP ${status}, Taler error ${code ?? "?"}${name}.`);
    this.status = status;
    this.code = code;
  }
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: the status alone speaks.
  }
  return new TalerError(response.status, body);
}

/** The officer's view of the exchange at `base` (ending in `/`). */
export class OfficerApi {
  constructor(base, publicKey, querySignature) {
    this.base = base;
    this.publicKey = publicKey;
    this.querySignature = querySignature;
  }

  url(path, params = {}) {
    const url = new URL(`aml/${this.publicKey}/${path}`, this.base);
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null) url.searchParams.set(name, value);
    }
    return url;
  }

  /** A signed GET: parsed JSON, or `empty` on 204. */
  async get(path, params, empty = null) {
    const response = await fetch(this.url(path, params), {
      headers: { "Taler-AML-Officer-Signature": this.querySignature },
      cache: "no-store",
    });
    if (response.status === 204) return empty;
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  /** The attribute history as a PDF Blob, or null when there is nothing. */
  async pdf(hPayto) {
    const response = await fetch(this.url(`attributes/${hPayto}`, { limit: -1024 }), {
      headers: { "Taler-AML-Officer-Signature": this.querySignature, Accept: "application/pdf" },
      cache: "no-store",
    });
    if (response.status === 204) return null;
    if (!response.ok) throw await failure(response);
    return response.blob();
  }

  /** POSTs a signed decision; resolves on 204, throws a TalerError otherwise. */
  async decide(body) {
    const response = await fetch(new URL(`aml/${this.publicKey}/decision`, this.base), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (response.status !== 204) throw await failure(response);
  }
}
