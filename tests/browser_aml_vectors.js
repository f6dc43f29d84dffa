// Runs inside the officer page (injected by tests/browser_aml.rs): computes the spec's vectors
// with the page's own signing module and answers them by name; the Rust side holds the
// expected values. WebDriver awaits the returned promise.
return (async () => {
  const c = await import(new URL("crypto.js", document.querySelector("script[type=module]").src));
  const bytes = (text) => new TextEncoder().encode(text);
  const range = (from) => Uint8Array.from({ length: 32 }, (_, i) => from + i);
  const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const attempt = (f) => {
    try {
      return hex(f());
    } catch (error) {
      return "error";
    }
  };
  const out = {};
  for (const text of ["", "f", "fo", "foo", "foob", "fooba", "foobar"]) {
    out[`base32 "${text}"`] = c.encodeBase32(bytes(text));
  }
  out["base32 00"] = c.encodeBase32(Uint8Array.of(0));
  out["base32 ff"] = c.encodeBase32(Uint8Array.of(255));
  out["base32 00..1f"] = c.encodeBase32(range(0));
  out["decode csqpyrk1e8"] = attempt(() => c.decodeBase32("csqpyrk1e8", 6));
  out["decode CSQPYRKLE8"] = attempt(() => c.decodeBase32("CSQPYRKLE8", 6));
  out["decode ZW0"] = attempt(() => c.decodeBase32("ZW0", 1));
  out["decode Z*"] = attempt(() => c.decodeBase32("Z*", 1));
  out["decode zz"] = attempt(() => c.decodeBase32("zz", 1));
  out["decode uu"] = attempt(() => c.decodeBase32("uu", 1));
  out["sha512 empty"] = c.encodeBase32(await c.sha512(""));
  out["sha512 abc"] = c.encodeBase32(await c.sha512("abc"));

  const a = await c.importOfficerKey(c.encodeBase32(range(0)));
  const b = await c.importOfficerKey(c.encodeBase32(range(0x40)));
  out["officer A pub"] = a.publicKey;
  out["officer B pub"] = b.publicKey;
  out["officer A query"] = await c.querySignature(a.key);
  out["officer B query"] = await c.querySignature(b.key);
  out["officer A key is extractable"] = String(a.key.extractable);

  const j4 = JSON.parse(
    '{"z":"\\u0001\\u001f\\u007f/\\u00e9\\u20ac","a":[0,-1,true,false,null],"\\u00e9":{},"Z":[],"\\ufb01":1,"\\ud83d\\ude00":2}',
  );
  out["canonical J4 hex"] = hex(bytes(c.canonicalJson(j4)));
  out["json hash {}"] = c.encodeBase32(await c.jsonHash({}));
  out["json hash J4"] = c.encodeBase32(await c.jsonHash(j4));
  out["canonical rejects 0.5"] = (() => {
    try {
      c.canonicalJson({ x: 0.5 });
      return "accepted";
    } catch {
      return "refused";
    }
  })();

  const freeze = (op) => ({
    operation_type: op, threshold: "KUDOS:0", timeframe: { d_us: 3600000000 },
    measures: ["verboten"], display_priority: 1, exposed: false, is_and_combinator: false,
  });
  const d1 = {
    h_payto: "A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G",
    decision_time: { t_s: 1700000000 },
    payto_uri: "payto://iban/DE89370400440532013000?receiver-name=Alice",
    justification: "Structuring suspected; account frozen pending review.",
    properties: { high_risk: true, pep: false, business_domain: "retail" },
    new_rules: { expiration_time: { t_s: "never" }, custom_measures: {}, rules: [freeze("WITHDRAW"), freeze("DEPOSIT")] },
    keep_investigating: true,
  };
  out["D1 properties hash"] = c.encodeBase32(await c.jsonHash(d1.properties));
  out["D1 new_rules hash"] = c.encodeBase32(await c.jsonHash(d1.new_rules));
  out["D1 block"] = hex(await c.decisionBlock(d1));
  out["D1 officer_sig"] = (await c.signDecision(a.key, d1)).officer_sig;
  const d2 = {
    h_payto: "F8YT6T7NJN3M1TEM3NC0DWKPRZB3MEYW5NK9S9SBEP7JR7C4ERS0",
    payto_uri: "payto://x-taler-bank/localhost:8080/alice?receiver-name=Alice",
    decision_time: { t_s: 1700000100 },
    justification: "Pr\u00fcfung \"Limit\" erh\u00f6ht\nZeile 2",
    new_measures: "officer-form",
    keep_investigating: false,
    new_rules: JSON.parse(
      '{"custom_measures":{"officer-form":{"check_name":"personal","context":{"limit":1000,"note":"Tab\\there"},"prog_name":"accept"}},"expiration_time":{"t_s":4102444800},"rules":[{"display_priority":2,"exposed":true,"is_and_combinator":false,"measures":["officer-form"],"operation_type":"WITHDRAW","threshold":"KUDOS:1000","timeframe":{"d_us":2592000000000}}],"successor_measure":"freeze"}',
    ),
  };
  out["D2 new_rules hash"] = c.encodeBase32(await c.jsonHash(d2.new_rules));
  out["D2 officer_sig"] = (await c.signDecision(a.key, d2)).officer_sig;

  for (const uri of [
    "payto://iban/DE89370400440532013000?receiver-name=Alice",
    "PAYTO://IBAN/COBADEFFXXX/de89370400440532013000?receiver-name=A",
    "payto://x-taler-bank/Bank.Example.COM/Alice?receiver-name=Alice%20A",
    "payto://x-taler-bank/localhost:8080/alice?receiver-name=a",
    "payto://iban/CH9300762011623852957?receiver-name=B",
    "payto://taler-reserve/exchange.example.com/000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG",
    "payto://iban/DE89370400440532013001",
    "payto://bitcoin/bc1qxyz",
  ]) {
    const normalized = c.normalizePayto(uri);
    out[`payto ${uri}`] =
      normalized instanceof Error ? "invalid" : `${normalized} ${await c.paytoHash(normalized)}`;
  }
  return out;
})().catch((error) => ({ error: String(error) }));
