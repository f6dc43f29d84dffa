// The decision form: presets, custom rules, justification; the exact signed content is
// shown before the officer's key signs it in the page.

import { canonicalJson, decisionBlock, signDecision } from "./crypto.js";
import { TalerError } from "./api.js";
import { el, fieldTable, time } from "./dom.js";

function freezeRules(currency) {
  const operations = ["WITHDRAW", "DEPOSIT", "MERGE", "BALANCE", "CLOSE", "AGGREGATE", "TRANSACTION", "REFUND"];
  return {
    expiration_time: { t_s: "never" },
    rules: operations.map((operation_type) => ({
      operation_type,
      threshold: `${currency}:0`,
      timeframe: { d_us: 30 * 86400 * 1000000 },
      measures: ["verboten"],
      display_priority: 1,
      exposed: true,
      is_and_combinator: false,
    })),
    custom_measures: {},
  };
}

export const PRESETS = {
  freeze: { label: "Freeze: forbid every operation", event: "aml-freeze" },
  default: { label: "Default rules (lift a freeze or custom limits)", event: "aml-default-rules" },
  measures: { label: "Ask for more information", event: "aml-more-information" },
  custom: { label: "Custom rules (JSON)", event: "" },
};

/**
 * The decision form of an account file. `context`: `{officer, measures, currency, hPayto,
 * fullPayto, current, onDecided}`; `current` is the account's rules in force (`currentRules`),
 * `onDecided` redraws the file after a decision.
 */
export function decideForm(context) {
  const { officer, measures, current } = context;
  const readOnly = officer.state !== "active";
  // Measures a customer can complete (SKIP ones run a program at once instead).
  const measureNames = Object.keys(measures.roots).filter((n) => measures.roots[n].check_name !== "SKIP");
  // A check without outputs only informs the customer: the natural notice of a freeze.
  const notice = measureNames.find((n) => measures.checks[measures.roots[n].check_name]?.outputs.length === 0);
  const describe = (name) =>
    `${name}: ${measures.checks[measures.roots[name].check_name]?.description ?? measures.roots[name].prog_name}`;
  const form = el(
    "form",
    { id: "decide", class: "decide", novalidate: true },
    el(
      "fieldset",
      { disabled: readOnly },
      el("legend", {}, "Decide"),
      readOnly
        ? el("p", { id: "read-only-note", class: "error" },
            "Your key is registered read-only: you may read account files but not decide. " +
            "An operator lets you decide with ",
            el("code", {}, `talerbox aml officer add --pub ${officer.publicKey} --name "YOUR NAME"`),
            " (without --read-only).")
        : null,
      el("div", { role: "radiogroup", "aria-label": "Preset" },
        Object.entries(PRESETS).map(([value, preset], i) =>
          el("label", { class: "check" },
            el("input", { type: "radio", name: "preset", value, checked: i === 0 }),
            ` ${preset.label}`))),
      el("div", { id: "freeze-choice" },
        el("label", { for: "freeze-notice" }, "What the customer's KYC page says meanwhile"),
        el("select", { id: "freeze-notice" },
          el("option", { value: "" }, "nothing (no open requirement)"),
          measureNames.map((n) => el("option", { value: n, selected: n === notice }, describe(n))))),
      el("fieldset", { id: "measure-choice", class: "sub", hidden: true },
        el("legend", {}, "Measures the customer must complete"),
        measureNames.map((name) =>
          el("label", { class: "check" },
            el("input", { type: "checkbox", name: "measure", value: name }),
            ` ${describe(name)}`)),
        el("label", { class: "check" }, el("input", { type: "checkbox", name: "all" }), " All of them (otherwise any one)")),
      el("div", { id: "custom-rules", hidden: true },
        el("label", { for: "rules-json" }, "New rules (LegitimizationRuleSet)"),
        el("textarea", { id: "rules-json", rows: 10, spellcheck: "false" }, JSON.stringify(current.rules, null, 2))),
      el("label", { for: "justification" }, "Justification (required)"),
      el("textarea", { id: "justification", rows: 3, required: true }),
      el("label", { class: "check" },
        el("input", { type: "checkbox", id: "investigate", checked: Boolean(current.active?.to_investigate) }),
        " Keep investigating"),
      el("label", { for: "events" }, "Events to count (space-separated, not signed)"),
      el("input", { id: "events", value: PRESETS.freeze.event, spellcheck: "false" }),
      el("button", { type: "submit" }, "Review what will be signed"),
    ),
    el("div", { id: "review" }),
    el("div", { id: "decide-result", role: "alert" }),
  );
  form.addEventListener("change", (event) => {
    if (event.target.name !== "preset") return;
    const preset = event.target.value;
    form.querySelector("#freeze-choice").hidden = preset !== "freeze";
    form.querySelector("#measure-choice").hidden = preset !== "measures";
    form.querySelector("#custom-rules").hidden = preset !== "custom";
    form.querySelector("#events").value = PRESETS[preset].event;
    form.querySelector("#review").replaceChildren();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    review(form, context).catch((error) => {
      form.querySelector("#decide-result").textContent = error.message;
    });
  });
  return form;
}

/** The request body the form describes, without its signature. */
function decisionBody(form, { currency, hPayto, fullPayto, current }) {
  const now = Math.floor(Date.now() / 1000);
  const preset = form.querySelector("input[name=preset]:checked").value;
  const justification = form.querySelector("#justification").value.trim();
  if (!justification) throw new Error("Write a justification: every decision needs one.");
  let rules;
  let newMeasures;
  if (preset === "freeze") {
    rules = freezeRules(currency);
    newMeasures = form.querySelector("#freeze-notice").value || undefined;
  }
  else if (preset === "default") rules = { expiration_time: { t_s: now }, rules: [], custom_measures: {} };
  else if (preset === "measures") {
    const chosen = [...form.querySelectorAll("input[name=measure]:checked")].map((c) => c.value);
    if (chosen.length === 0) throw new Error("Choose at least one measure.");
    newMeasures = (form.querySelector("input[name=all]").checked ? "+" : "") + chosen.join(" ");
    rules = current.origin === "decision" ? current.rules : { expiration_time: { t_s: now }, rules: [], custom_measures: {} };
  } else {
    try {
      rules = JSON.parse(form.querySelector("#rules-json").value);
    } catch (error) {
      throw new Error(`The custom rules are not JSON: ${error.message}`);
    }
  }
  const body = {
    h_payto: hPayto,
    decision_time: { t_s: now },
    justification,
    new_rules: rules,
    keep_investigating: form.querySelector("#investigate").checked,
  };
  if (fullPayto) body.payto_uri = fullPayto;
  if (newMeasures !== undefined) body.new_measures = newMeasures;
  const events = form.querySelector("#events").value.split(" ").filter(Boolean);
  if (events.length > 0) body.events = events;
  return body;
}

const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

async function review(form, context) {
  const result = form.querySelector("#decide-result");
  result.textContent = "";
  const body = decisionBody(form, context);
  const block = await decisionBlock(body);
  const signed = [
    ["Purpose", "AML decision (1350), 312 bytes"],
    ["Decision time", `${time(body.decision_time)} = ${BigInt(body.decision_time.t_s) * 1000000n} µs`],
    ["Account", body.h_payto],
    ["Justification (SHA-512)", el("pre", {}, body.justification)],
    ["Properties", "none (64 zero bytes)"],
    ["New rules (canonical JSON, hashed)", el("pre", { id: "signed-rules" }, canonicalJson(body.new_rules))],
    ["New measures (SHA-512)", body.new_measures ?? "none (64 zero bytes)"],
    ["Keep investigating", body.keep_investigating ? "yes (flag 1)" : "no (flag 0)"],
    ["Signed block (hex)", el("pre", { class: "hex" }, hex(block).replace(/(.{64})/g, "$1\n"))],
    ["Not signed, sent along", [body.payto_uri ? `payto_uri ${body.payto_uri}` : "", body.events ? ` events ${body.events.join(" ")}` : ""].join("") || "–"],
  ];
  const box = form.querySelector("#review");
  box.replaceChildren(
    fieldTable(signed, "What your key will sign"),
    el("button", {
      type: "button",
      id: "sign-submit",
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          await context.officer.api.decide(await signDecision(context.officer.key, body));
          await context.onDecided();
          const done = document.getElementById("decide-result");
          done.textContent = "Decision recorded (HTTP 204).";
          done.className = "ok";
        } catch (error) {
          event.target.disabled = false;
          result.textContent = error instanceof TalerError ? `Refused: ${error.message}` : error.message;
        }
      },
    }, "Sign and submit"),
  );
  box.querySelector("#sign-submit").focus();
}
