// The officer's cryptography, all in the browser: Taler base32, SHA-512, Ed25519 through
// Web Crypto, the canonical JSON hash, the signed blocks of the query header and of a
// decision, and the normalized payto hash. Byte layouts follow taler-primitives.md and
// exchange-aml-decisions.md; the private key exists only as a non-extractable CryptoKey.

import { decode, encode } from "../web/common/base32.js";

/** Taler base32 of `bytes` (Uint8Array). */
export const encodeBase32 = encode;

/**
 * Decodes `text` to exactly `size` bytes: the length must fit the size, case and the
 * look-alikes O, I, L and U are accepted (taler-primitives.md §1); throws otherwise.
 */
export function decodeBase32(text, size) {
  const expected = Math.ceil((size * 8) / 5);
  if (text.length !== expected) {
    throw new Error(`expected ${expected} base32 characters, got ${text.length}`);
  }
  return decode(text.replace(/[Uu]/g, "V"));
}

const utf8 = new TextEncoder();

/** SHA-512 of bytes or of a string's UTF-8. */
export async function sha512(data) {
  const bytes = typeof data === "string" ? utf8.encode(data) : data;
  return new Uint8Array(await crypto.subtle.digest("SHA-512", bytes));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410).
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

function fromBase64Url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) =>
    c.charCodeAt(0),
  );
}

/**
 * Turns the officer's base32 private key (32-byte seed) into a non-extractable signing key and
 * its public key (base32). The seed is wiped from the buffers this function made.
 */
export async function importOfficerKey(text) {
  const seed = decodeBase32(text.trim(), 32);
  const pkcs8 = concat(PKCS8_PREFIX, seed);
  seed.fill(0);
  try {
    // Extractable once, only to read the public half (Web Crypto cannot derive it otherwise).
    const temporary = await crypto.subtle.importKey("pkcs8", pkcs8, "Ed25519", true, ["sign"]);
    const jwk = await crypto.subtle.exportKey("jwk", temporary);
    const publicKey = encodeBase32(fromBase64Url(jwk.x));
    jwk.d = "";
    const key = await crypto.subtle.importKey("pkcs8", pkcs8, "Ed25519", false, ["sign"]);
    return { key, publicKey };
  } finally {
    pkcs8.fill(0);
  }
}

async function sign(key, message) {
  return new Uint8Array(await crypto.subtle.sign("Ed25519", key, message));
}

function header(size, purpose) {
  const block = new Uint8Array(size);
  const view = new DataView(block.buffer);
  view.setUint32(0, size);
  view.setUint32(4, purpose);
  return block;
}

const AML_QUERY = 1351;
const AML_DECISION = 1350;

/** The `Taler-AML-Officer-Signature` value: a signature over the fixed 8-byte block. */
export async function querySignature(key) {
  return encodeBase32(await sign(key, header(8, AML_QUERY)));
}

/** Compares strings by code point, which is the order of their UTF-8 bytes. */
function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Canonical JSON text: compact, keys in UTF-8 byte order, integers only. */
export function canonicalJson(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`only integers can be signed, not ${value}`);
    return String(value === 0 ? 0 : value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort(byCodePoint);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  throw new Error(`${typeof value} cannot be signed`);
}

/** SHA-512 over the canonical text followed by one NUL byte. */
export async function jsonHash(value) {
  return sha512(concat(utf8.encode(canonicalJson(value)), Uint8Array.of(0)));
}

function microseconds(timestamp) {
  if (typeof timestamp?.t_s !== "number") throw new Error("decision_time must be {t_s: seconds}");
  return BigInt(timestamp.t_s) * 1000000n;
}

/** The 312-byte block an officer signs for a decision (AmlDecisionPS). */
export async function decisionBlock(body) {
  const block = header(312, AML_DECISION);
  const view = new DataView(block.buffer);
  view.setBigUint64(8, microseconds(body.decision_time));
  block.set(decodeBase32(body.h_payto, 32), 16);
  block.set(await sha512(body.justification), 48);
  if (body.properties != null) block.set(await jsonHash(body.properties), 112);
  block.set(await jsonHash(body.new_rules), 176);
  if (body.new_measures != null) block.set(await sha512(body.new_measures), 240);
  view.setBigUint64(304, body.keep_investigating ? 1n : 0n);
  return block;
}

/** `body` with its `officer_sig`. */
export async function signDecision(key, body) {
  const signature = await sign(key, await decisionBlock(body));
  return { ...body, officer_sig: encodeBase32(signature) };
}

function ibanValid(iban) {
  if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$/.test(iban)) return false;
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const c of moved) {
    const n = parseInt(c, 36);
    rest = (n > 9 ? rest * 100 + n : rest * 10 + n) % 97;
  }
  return rest === 1;
}

/** The normalized form of a payto URI (taler-primitives.md §8), or an Error saying why not. */
export function normalizePayto(uri) {
  const text = uri.trim().split("?")[0];
  const match = /^payto:\/\/([^/]+)\/(.+)$/i.exec(text);
  if (!match || !/^[A-Za-z0-9/:$&!\-_.,;=*+%~@()[\]]*$/.test(text)) {
    return new Error("not a payto URI (payto://METHOD/…)");
  }
  const method = match[1].toLowerCase();
  const path = match[2];
  if (method === "iban") {
    const segments = path.split("/");
    if (segments.length > 2) return new Error("an IBAN payto has at most BIC/IBAN");
    const iban = segments[segments.length - 1].toUpperCase();
    if (!ibanValid(iban)) return new Error(`${iban} is not a valid IBAN`);
    return `payto://iban/${iban}`;
  }
  if (method === "x-taler-bank") {
    const slash = path.indexOf("/");
    if (slash <= 0 || slash === path.length - 1) {
      return new Error("an x-taler-bank payto is payto://x-taler-bank/HOST/ACCOUNT");
    }
    return `payto://x-taler-bank/${path.slice(0, slash).toLowerCase()}${path.slice(slash)}`;
  }
  if (method === "taler-reserve" || method === "taler-reserve-http") return text;
  return new Error(`the payto method "${match[1]}" is not one talerbox knows`);
}

/** h_normalized_payto: base32 of the first 32 bytes of SHA-512(normalized ‖ NUL). */
export async function paytoHash(normalized) {
  const hash = await sha512(concat(utf8.encode(normalized), Uint8Array.of(0)));
  return encodeBase32(hash.slice(0, 32));
}
