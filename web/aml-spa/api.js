// The exchange's officer API as the page uses it: signed reads, decisions, and errors in
// words with their Taler code (on top of the shared request helper).

import { ApiError, exchangeBase, postJson, request } from "../web/common/api.js";

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
  constructor(status, code, hint, detail) {
    const words = MEANINGS[code] ?? hint ?? (status ? `the exchange answered ${status}` : "the exchange cannot be reached");
    const name = hint ? ` ${hint}` : "";
    const more = detail ? ` (${detail})` : "";
    super(`${words[0].toUpperCase()}${words.slice(1)}${more}. HTTP ${status}, Taler error ${code || "?"}${name}.`);
    this.status = status;
    this.code = code;
  }
}

/** Runs a shared-helper request, answering its errors as TalerErrors. */
async function exchange(call) {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiError) throw new TalerError(error.status, error.code, error.hint, error.detail);
    throw error;
  }
}

/** The officer's view of the exchange. */
export class OfficerApi {
  constructor(publicKey, querySignature) {
    this.publicKey = publicKey;
    this.querySignature = querySignature;
  }

  url(path, params = {}) {
    const url = new URL(`aml/${this.publicKey}/${path}`, exchangeBase);
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null) url.searchParams.set(name, value);
    }
    return url;
  }

  /** A signed GET: parsed JSON, or `empty` on 204. */
  async get(path, params, empty = null) {
    const answer = await exchange(() =>
      request(this.url(path, params), {
        headers: { "Taler-AML-Officer-Signature": this.querySignature },
        cache: "no-store",
      }),
    );
    return answer.status === 204 ? empty : answer.body;
  }

  /** The attribute history as a PDF Blob, or null when there is nothing. */
  async pdf(hPayto) {
    const response = await fetch(this.url(`attributes/${hPayto}`, { limit: -1024 }), {
      headers: { "Taler-AML-Officer-Signature": this.querySignature, Accept: "application/pdf" },
      cache: "no-store",
    });
    if (response.status === 204) return null;
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new TalerError(response.status, body.code, body.hint, body.detail);
    }
    return response.blob();
  }

  /** POSTs a signed decision; resolves on 204, throws a TalerError otherwise. */
  async decide(body) {
    await exchange(() => postJson(`aml/${this.publicKey}/decision`, body));
  }
}
