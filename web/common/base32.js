// Crockford base32 as Taler writes it: upper case, no padding, no check symbol; decoding
// also accepts lower case and the look-alikes O→0, I and L→1 (the alphabet has no U).

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** Encodes bytes (Uint8Array) as Crockford base32. */
export function encode(bytes) {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

function symbolValue(symbol) {
  const c = symbol.toUpperCase();
  if (c === "O") return 0;
  if (c === "I" || c === "L") return 1;
  const value = ALPHABET.indexOf(c);
  if (value < 0) throw new Error(`not a base32 symbol: ${symbol}`);
  return value;
}

/** Decodes Crockford base32 into a Uint8Array; throws on a symbol outside the alphabet. */
export function decode(text) {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let index = 0;
  for (const symbol of text) {
    buffer = (buffer << 5) | symbolValue(symbol);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[index++] = (buffer >> bits) & 255;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}
