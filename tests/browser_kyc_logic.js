// Unit tests of web/kyc-spa/logic.js, run in the page by tests/browser_kyc.rs:
// `arguments[0]` is the module's URL; the answer lists the failures (empty: all passed).
return (async () => {
  const m = await import(arguments[0]);
  const failures = [];
  let count = 0;
  const eq = (name, actual, expected) => {
    count += 1;
    const a = JSON.stringify(actual);
    const e = JSON.stringify(expected);
    if (a !== e) failures.push(`${name}: ${a} !== ${e}`);
  };
  const form = {
    id: "f",
    fields: [
      { name: "FULL_NAME", label: "Full name", type: "text", required: true },
      { name: "DATE_OF_BIRTH", label: "Date of birth", type: "date", required: true },
      { name: "CONTACT_EMAIL", label: "Contact email", type: "email", required: false },
      { name: "CONTACT_PHONE", label: "Contact phone", type: "tel", required: false },
      { name: "BILL_SCAN", label: "Bill scan", type: "file", required: true },
    ],
  };
  const today = "2026-12-04";
  const good = { FULL_NAME: "Alice", DATE_OF_BIRTH: "1990-01-31", BILL_SCAN: { name: "b.pdf", size: 10 } };
  eq("valid", m.validate(form, good, today), {});
  eq("required", Object.keys(m.validate(form, { FULL_NAME: "  " }, today)),
    ["FULL_NAME", "DATE_OF_BIRTH", "BILL_SCAN"]);
  eq("no 31 February", !!m.validate(form, { ...good, DATE_OF_BIRTH: "1990-02-31" }, today).DATE_OF_BIRTH, true);
  eq("not a date", !!m.validate(form, { ...good, DATE_OF_BIRTH: "31.01.1990" }, today).DATE_OF_BIRTH, true);
  eq("born today", m.validate(form, { ...good, DATE_OF_BIRTH: today }, today).DATE_OF_BIRTH,
    "A date of birth lies in the past.");
  eq("email", !!m.validate(form, { ...good, CONTACT_EMAIL: "alice@" }, today).CONTACT_EMAIL, true);
  eq("email ok", m.validate(form, { ...good, CONTACT_EMAIL: "alice@example.com" }, today), {});
  eq("phone", !!m.validate(form, { ...good, CONTACT_PHONE: "call me" }, today).CONTACT_PHONE, true);
  eq("phone ok", m.validate(form, { ...good, CONTACT_PHONE: "+41 44 123 45 67" }, today), {});
  eq("empty file", m.validate(form, { ...good, BILL_SCAN: { name: "b", size: 0 } }, today).BILL_SCAN,
    "The file is empty.");
  eq("large file", !!m.validate(form, { ...good, BILL_SCAN: { name: "b", size: m.MAX_FILE_BYTES + 1 } }, today).BILL_SCAN, true);
  eq("input types", form.fields.map(m.inputType), ["text", "date", "email", "tel", "file"]);
  eq("unknown type is text", m.inputType({ type: "colour" }), "text");
  const one = { requirements: [{}], is_and_combinator: false };
  eq("one", m.summary(one), "One step is required.");
  eq("all", m.summary({ requirements: [{}, {}], is_and_combinator: true }), "Complete all 2 steps.");
  eq("any", m.summary({ requirements: [{}, {}], is_and_combinator: false }), "Complete one of these 2 steps.");
  const sent = new Set(["a"]);
  const started = new Set(["b"]);
  eq("state sent", m.requirementState({ form: "x", id: "a" }, sent, started).label, "Sent, being checked");
  eq("state started", m.requirementState({ form: "LINK", id: "b" }, sent, started).label, "Started at the provider");
  eq("state todo", m.requirementState({ form: "LINK", id: "c" }, sent, started).label, "To do");
  eq("state info", m.requirementState({ form: "INFO" }, sent, started).label, "For your information");
  const data = m.uploadData({ id: "f", fields: form.fields.slice(0, 3) },
    { FULL_NAME: " Alice ", DATE_OF_BIRTH: "1990-01-31", CONTACT_EMAIL: "" });
  eq("upload", [...data.entries()], [["FORM_ID", "f"], ["FULL_NAME", "Alice"], ["DATE_OF_BIRTH", "1990-01-31"]]);
  return { count, failures };
})();
