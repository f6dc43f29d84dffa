// The AML officer's back office: sign-in with the officer key, case queue, account file,
// decisions and statistics. Everything shown comes from the exchange's officer API; the key
// signs in this page and is never sent.

import {
  decodeBase32,
  encodeBase32,
  importOfficerKey,
  normalizePayto,
  paytoHash,
  querySignature,
  signDecision,
} from "./crypto.js";
import { decideForm, PRESETS } from "./decide.js";
import { duration, el, fieldTable, table, time } from "./dom.js";
import { OfficerApi, TalerError } from "./api.js";
import { request } from "../web/common/api.js";
import { decode } from "../web/common/base32.js";
import * as keystore from "./keystore.js";
import { barChart } from "./chart.js";

const $ = (id) => document.getElementById(id);

/** The signed-in officer: `{key, publicKey, api, state}`; null when signed out. */
let officer = null;
let measures = null;
let currency = null;
/** Form descriptions (`GET kyc-forms/NAME`) by form name; null for one the server lacks. */
const forms = new Map();
/** Full payto URIs the exchange told us, by account hash (read from the accounts list). */
const paytoByHash = new Map();

function accountLink(hPayto, text) {
  return el("a", { href: `#/account/${hPayto}` }, text ?? hPayto);
}

function show(view) {
  for (const section of document.querySelectorAll("main > section")) {
    const shown = section.id === `view-${view}`;
    if (shown && section.hidden) {
      // A new view: keyboard and screen-reader users start at its heading.
      const heading = section.querySelector("h2");
      heading.tabIndex = -1;
      queueMicrotask(() => heading.focus());
    }
    section.hidden = !shown;
  }
  $("nav").hidden = !officer || !officer.api || !["active", "read-only"].includes(officer.state);
  $("status").textContent = "";
}

function report(error) {
  $("status").textContent = error instanceof TalerError ? error.message : `Error: ${error.message}`;
}

// ---------- sign-in and officer state ----------

const STATE_WORDS = {
  active: "active",
  "read-only": "read-only",
  disabled: "disabled",
  unregistered: "not registered",
};

/**
 * Which state the exchange gives this officer. Signed reads tell apart unknown (404/1034) and
 * disabled (409/1034) keys; only a decision tells read-only ones. The probe is a correctly
 * signed decision about a random, unknown account without its payto URI: the exchange checks
 * the officer before the account, so a read-write officer gets 404/1041, a read-only one
 * 403/1826, and nothing is written either way.
 */
async function officerState(api, key) {
  try {
    measures = await api.get("measures");
  } catch (error) {
    if (error.code === 1034) return error.status === 409 ? "disabled" : "unregistered";
    throw error;
  }
  const probe = {
    h_payto: encodeBase32(crypto.getRandomValues(new Uint8Array(32))),
    decision_time: { t_s: Math.floor(Date.now() / 1000) },
    justification: "officer state probe",
    new_rules: { expiration_time: { t_s: Math.floor(Date.now() / 1000) }, rules: [], custom_measures: {} },
    keep_investigating: false,
  };
  try {
    await api.decide(await signDecision(key, probe));
  } catch (error) {
    if (error.code === 1041) return "active";
    if (error.code === 1826) return "read-only";
    throw error;
  }
  throw new Error("the exchange accepted a decision about an unknown account");
}

async function signIn(key, publicKey) {
  const api = new OfficerApi(publicKey, await querySignature(key));
  officer = { key, publicKey, api, state: null };
  officer.state = await officerState(api, key);
  $("officer").hidden = false;
  $("officer-pub").textContent = publicKey;
  $("officer-state").textContent = STATE_WORDS[officer.state];
  $("officer-state").className = `badge state-${officer.state}`;
  if (officer.state === "active" || officer.state === "read-only") {
    if (!location.hash.startsWith("#/")) location.hash = "#/queue";
    else await route();
    return;
  }
  show("state");
  const command = `talerbox aml officer add --pub ${publicKey} --name "YOUR NAME"`;
  $("state-text").replaceChildren(
    officer.state === "disabled"
      ? el("p", {}, "This officer key is registered but disabled: the exchange refuses its reads and decisions.")
      : el("p", {}, "This key is not an AML officer of this exchange (or you pasted another key than your private key)."),
    el("p", {}, "The operator enables it with:"),
    el("pre", { id: "register-command" }, command),
    el("p", {}, "Add ", el("code", {}, "--read-only"), " for an officer who may only read."),
  );
}

async function keyText() {
  const typed = $("key-text").value.trim();
  if (typed) return typed;
  const file = $("key-file").files[0];
  if (file) return (await file.text()).trim();
  return "";
}

async function onSignIn(event) {
  event.preventDefault();
  performance.mark("aml:sign-in");
  const message = $("signin-error");
  message.textContent = "";
  const text = await keyText();
  if (!text) {
    message.textContent = "Paste your private key or choose your key file.";
    return;
  }
  let imported;
  try {
    imported = await importOfficerKey(text);
  } catch (error) {
    message.textContent = `This is not an officer private key: ${error.message}.`;
    return;
  } finally {
    $("key-text").value = "";
    $("key-file").value = "";
  }
  try {
    if ($("remember").checked) await keystore.remember(imported);
    await signIn(imported.key, imported.publicKey);
  } catch (error) {
    message.textContent = error instanceof TalerError ? error.message : `Sign-in failed: ${error.message}`;
  }
}

async function signOut() {
  officer = null;
  measures = null;
  await keystore.forget().catch(() => {});
  $("officer").hidden = true;
  location.hash = "";
  show("signin");
}

// ---------- case queue ----------

async function queue(filter) {
  show("queue");
  const api = officer.api;
  const h = filter || undefined;
  const [accounts, decisions, activity] = await Promise.all([
    api.get("accounts", { limit: -1024 }, { accounts: [] }),
    api.get("decisions", { limit: -20, h_payto: h }, { records: [] }),
    api.get("legitimizations", { limit: -20, h_payto: h }, { measures: [] }),
  ]);
  for (const a of accounts.accounts) if (a.full_payto) paytoByHash.set(a.h_payto, a.full_payto);
  const investigated = accounts.accounts.filter((a) => a.to_investigate && (!h || a.h_payto === h));
  $("queue-investigation").replaceChildren(
    investigated.length === 0
      ? el("p", {}, "No account is under investigation.")
      : table(
          ["Account", "Payto", "Since", "Rules until"],
          investigated.map((a) => [
            accountLink(a.h_payto),
            a.full_payto ?? "–",
            time(a.decision_time),
            time(a.expiration_time),
          ]),
        ),
  );
  $("queue-decisions").replaceChildren(
    decisions.records.length === 0
      ? el("p", {}, "No decisions yet.")
      : table(
          ["When", "Account", "By", "Justification", "Investigate"],
          decisions.records.map((d) => [
            time(d.decision_time),
            accountLink(d.h_payto, d.full_payto ?? d.h_payto),
            d.decider_pub ? el("code", {}, d.decider_pub.slice(0, 8)) : "AML program",
            d.justification ?? "–",
            d.to_investigate ? "yes" : "no",
          ]),
        ),
  );
  $("queue-activity").replaceChildren(
    activity.measures.length === 0
      ? el("p", {}, "No KYC activity yet.")
      : table(
          ["Started", "Account", "Measures", "State"],
          activity.measures.map((m) => [
            time(m.start_time),
            accountLink(m.h_payto, paytoByHash.get(m.h_payto) ?? m.h_payto),
            m.measures.measures.map((x) => x.check_name).join(", ") || (m.measures.verboten ? "forbidden" : "–"),
            m.is_finished ? "done" : "open",
          ]),
        ),
  );
}

/** An account hash from what the officer typed: a payto URI (hashed here) or a hash. */
async function accountOf(text) {
  const input = text.trim();
  if (/^payto:/i.test(input)) {
    const normalized = normalizePayto(input);
    if (normalized instanceof Error) throw normalized;
    return { hPayto: await paytoHash(normalized), normalized };
  }
  decodeBase32(input, 32);
  return { hPayto: encodeBase32(decodeBase32(input, 32)) };
}

async function onSearch(event) {
  event.preventDefault();
  const note = $("search-note");
  try {
    const { hPayto, normalized } = await accountOf($("search").value);
    note.replaceChildren(
      normalized ? `${normalized} → ` : "",
      accountLink(hPayto, `open the file of ${hPayto}`),
    );
    await queue(hPayto);
  } catch (error) {
    note.textContent = `Not an account: ${error.message}.`;
  }
}

// ---------- account file ----------

function isFrozen(rules) {
  return (
    rules.rules.length > 0 &&
    rules.rules.every((r) => /:0(\.0*)?$/.test(r.threshold) && r.measures.includes("verboten"))
  );
}

const LABELS = {
  FORM_ID: "Form",
  FORM_VERSION: "Form version",
  FULL_NAME: "Full name",
  DATE_OF_BIRTH: "Date of birth",
  CONTACT_EMAIL: "E-mail address",
  CONTACT_PHONE: "Phone number",
  ADDRESS: "Postal address",
  NATIONALITY: "Nationality",
};

function label(key) {
  return LABELS[key] ?? key.toLowerCase().replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function bytesOfFile(value) {
  if (typeof value.data === "string") return decode(value.data);
  const base64 = value.contents.replace(/^data:[^,]*,/, "");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function attributeValue(value) {
  if (value && typeof value === "object" && typeof value.filename === "string" &&
      (typeof value.data === "string" || typeof value.contents === "string")) {
    const type = value.content_type ?? value.mime_type ?? "application/octet-stream";
    try {
      const url = URL.createObjectURL(new Blob([bytesOfFile(value)], { type }));
      return el("a", { href: url, download: value.filename, class: "file" }, `${value.filename} (download)`);
    } catch {
      return `${value.filename} (unreadable)`;
    }
  }
  if (value && typeof value === "object" && typeof value.text === "string") return value.text;
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Fetches the descriptions of the forms `rows` were filed with, once each. */
async function loadForms(rows) {
  const names = new Set(rows.map((r) => r.attributes?.FORM_ID).filter((f) => typeof f === "string"));
  await Promise.all(
    [...names]
      .filter((name) => !forms.has(name) && !name.startsWith("challenger-"))
      .map(async (name) => {
        try {
          forms.set(name, (await request(`kyc-forms/${encodeURIComponent(name)}`)).body);
        } catch {
          forms.set(name, null);
        }
      }),
  );
}

function attributeRow(row) {
  const attributes = row.attributes;
  const source = row.by_aml_officer ? "filed by an AML officer" : "from the customer";
  if (!attributes) return el("p", {}, `${time(row.collection_time)}: attributes unavailable (not decryptable).`);
  const form = attributes.FORM_ID ?? "?";
  const validated = form.startsWith("challenger-");
  const description = forms.get(form);
  const caption = validated
    ? `${time(row.collection_time)} · address validated by the challenger (${form.slice(11)})`
    : `${time(row.collection_time)} · ${description ? `"${description.title}" (${form})` : `form ${form}`} · ${source}`;
  // The form's own order and labels first, then whatever else the row holds.
  const described = (description?.fields ?? []).filter((f) => f.name in attributes);
  const rest = Object.keys(attributes)
    .filter((k) => !["FORM_ID", "FORM_VERSION", "FORM_SALT"].includes(k) && !described.some((f) => f.name === k))
    .sort();
  const pairs = [
    ...described.map((f) => [f.label, attributeValue(attributes[f.name])]),
    ...rest.map((k) => [label(k), attributeValue(attributes[k])]),
  ];
  return fieldTable(pairs, caption);
}

function rulesTable(rules) {
  if (rules.rules.length === 0) return el("p", {}, "No limits.");
  return table(
    ["Operation", "Threshold", "Per", "Then", "Shown to customer"],
    rules.rules.map((r) => [
      r.operation_type,
      r.threshold,
      duration(r.timeframe),
      r.measures.map((m) => (m === "verboten" ? "forbidden" : m)).join(r.is_and_combinator ? " and " : " or ") || "–",
      r.exposed ? "yes" : "no",
    ]),
  );
}

/** The account's rules in force now, read from its active decision or the defaults. */
function currentRules(active) {
  const now = Date.now() / 1000;
  if (active) {
    const until = active.limits.expiration_time.t_s;
    if (until === "never" || until > now) return { rules: active.limits, origin: "decision", active };
  }
  return {
    rules: { expiration_time: { t_s: "never" }, rules: measures.default_rules, custom_measures: {} },
    origin: active ? "expired" : "default",
    active,
  };
}

async function account(hPayto) {
  show("account");
  const api = officer.api;
  const [history, open, attributes, journal] = await Promise.all([
    api.get("decisions", { h_payto: hPayto, limit: -100 }, { records: [] }),
    api.get("legitimizations", { h_payto: hPayto, active: "yes", limit: -20 }, { measures: [] }),
    api.get(`attributes/${hPayto}`, { limit: -100 }, { details: [] }),
    api.get("journal", { h_payto: hPayto, limit: -50 }, { entries: [] }),
  ]);
  await loadForms(attributes.details);
  const active = history.records.find((r) => r.is_active);
  const current = currentRules(active);
  const fullPayto = history.records.find((r) => r.full_payto)?.full_payto ?? paytoByHash.get(hPayto);
  const frozen = isFrozen(current.rules);
  $("account-title").textContent = `Account ${hPayto.slice(0, 8)}…`;
  const box = $("account");
  box.replaceChildren(
    fieldTable([
      ["Account hash", el("code", { id: "account-hash" }, hPayto)],
      ["Payto URI", fullPayto ?? "unknown to the exchange"],
      ["State", el("strong", { id: "account-state", class: frozen ? "frozen" : "" }, frozen ? "Frozen" : "Not frozen")],
      ["Under investigation", active?.to_investigate ? "yes" : "no"],
      ["Rules", current.origin === "decision"
        ? `set ${active.decider_pub ? "by an officer's decision" : "by an AML program"} on ${time(active.decision_time)}, until ${time(current.rules.expiration_time)}`
        : current.origin === "expired" ? "the defaults (the last decision's rules expired)" : "the defaults (no decision yet)"],
    ]),
    el("h3", {}, "Current rules"),
    rulesTable(current.rules),
    el("h3", {}, "Open measures"),
    open.measures.length === 0
      ? el("p", {}, "None: the customer has nothing to do.")
      : table(
          ["Since", "Measure", "What the customer must do"],
          open.measures.flatMap((set) =>
            set.measures.measures.map((m) => [
              time(set.start_time),
              `${m.check_name} → ${m.prog_name}`,
              measures.checks[m.check_name]?.description ?? "–",
            ]),
          ),
        ),
    el("h3", {}, "Attributes"),
    el(
      "div",
      { id: "attributes" },
      attributes.details.length === 0 ? el("p", {}, "No data collected.") : attributes.details.map(attributeRow),
    ),
    el("p", {}, el("button", { type: "button", id: "pdf", onclick: () => pdf(hPayto) }, "Export as PDF"), " ", el("span", { id: "pdf-result", role: "status" })),
    el("h3", {}, "Decisions"),
    history.records.length === 0
      ? el("p", {}, "No decisions yet.")
      : table(
          ["When", "Decided by", "Justification", "Rules", "Investigate", "In force"],
          history.records.map((d) => [
            time(d.decision_time),
            d.decider_pub ? el("code", { title: d.decider_pub }, d.decider_pub.slice(0, 12) + "…") : "AML program",
            d.justification ?? "–",
            isFrozen(d.limits) ? "freeze" : d.limits.rules.length === 0 ? "defaults" : `${d.limits.rules.length} rules`,
            d.to_investigate ? "yes" : "no",
            d.is_active ? "yes" : "no",
          ]),
        ),
    el("h3", {}, "Access log"),
    el("div", { id: "access-log" }, accessLog(journal.entries)),
    decideForm({ officer, measures, currency, hPayto, fullPayto, current, onDecided: () => account(hPayto) }),
  );
  performance.mark("aml:account-rendered");
}

/** What a journal entry of the account records, in words. */
const JOURNAL_KINDS = {
  "kyc.requirement_opened": "requirement opened",
  "kyc.process_started": "KYC process started",
  "kyc.attributes_stored": "attributes stored",
  "kyc.program_outcome": "AML program outcome applied",
  "aml.decision": "decision applied",
  "aml.attributes_read": "attributes read",
  "aml.decisions_read": "decisions read",
  "aml.journal_read": "access log read",
  "retention.purged": "attribute rows purged",
  "retention.hold": "legal hold set or released",
};

/** The newest entries of the compliance journal for the account: who read or changed what. */
function accessLog(entries) {
  if (entries.length === 0) return el("p", {}, "Nothing journaled yet.");
  const who = (actor) => {
    const [role, name] = actor.split(":");
    if (role === "officer" && name === officer.publicKey) return "you";
    return name ? el("span", {}, `${role} `, el("code", { title: name }, name.length > 16 ? `${name.slice(0, 12)}…` : name)) : role;
  };
  return table(
    ["When", "What", "Who", "Serial"],
    entries.map((e) => [time(e.at), JOURNAL_KINDS[e.kind] ?? e.kind, who(e.actor), String(e.serial)]),
    "Newest first; every read of this file is recorded before it is answered.",
  );
}

async function pdf(hPayto) {
  const out = $("pdf-result");
  out.textContent = "Preparing…";
  try {
    const blob = await officer.api.pdf(hPayto);
    if (!blob) {
      out.textContent = "Nothing to export: no data collected.";
      return;
    }
    const link = el("a", { id: "pdf-link", href: URL.createObjectURL(blob), download: `aml-${hPayto.slice(0, 8)}.pdf` }, "Save the PDF");
    out.replaceChildren(link);
    link.click();
  } catch (error) {
    out.textContent = error.message;
  }
}

// ---------- statistics ----------

function day(date) {
  return Math.floor(Date.parse(`${date}T00:00:00Z`) / 1000);
}

async function statistics(event) {
  event?.preventDefault();
  const names = $("stats-names").value.split(" ").filter(Boolean);
  const start = day($("stats-start").value);
  const end = day($("stats-end").value) + 86400;
  const chart = $("stats-chart");
  if (!names.length || !(start < end)) {
    chart.textContent = "Choose event names and a period whose end is not before its start.";
    return;
  }
  const stepDays = Number($("stats-step").value);
  const step = stepDays === 0 ? end - start : stepDays * 86400;
  const buckets = [];
  for (let from = start; from < end && buckets.length < 62; from += step) {
    buckets.push([from, Math.min(from + step, end)]);
  }
  const counts = await Promise.all(
    buckets.map(([from, to]) =>
      officer.api.get(`kyc-statistics/${encodeURIComponent(names.join(" "))}`, { start_date: from, end_date: to }, { statistics: [] }),
    ),
  );
  const groups = buckets.map(([from], i) => ({
    label: new Date(from * 1000).toISOString().slice(5, 10),
    values: names.map((name, n) => counts[i].statistics[n]?.counter ?? 0),
  }));
  const totals = names.map((name, n) => `${name}: ${groups.reduce((sum, g) => sum + g.values[n], 0)}`);
  chart.replaceChildren(barChart(groups, names, `Events per ${stepDays === 0 ? "period" : stepDays === 1 ? "day" : "week"}`), el("p", { id: "stats-totals" }, `Totals: ${totals.join(", ")}`));
}

function statsView() {
  show("stats");
  if (!$("stats-names").value) {
    $("stats-names").value = Object.values(PRESETS).map((p) => p.event).filter(Boolean).join(" ");
    const today = new Date();
    $("stats-end").value = today.toISOString().slice(0, 10);
    $("stats-start").value = new Date(today - 13 * 86400000).toISOString().slice(0, 10);
  }
  return statistics();
}

// ---------- routing ----------

async function route() {
  if (!officer || !["active", "read-only"].includes(officer.state)) return;
  const hash = location.hash;
  try {
    const found = /^#\/account\/([0-9A-Za-z]{52})$/.exec(hash);
    if (found) await account(found[1]);
    else if (hash === "#/stats") await statsView();
    else await queue();
  } catch (error) {
    report(error);
  }
}

async function start() {
  $("signin-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", signOut);
  $("search-form").addEventListener("submit", onSearch);
  $("stats-form").addEventListener("submit", (event) => statistics(event).catch(report));
  window.addEventListener("hashchange", route);
  try {
    currency = (await request("config")).body.currency;
    const remembered = await keystore.recall().catch(() => undefined);
    if (remembered) {
      await signIn(remembered.key, remembered.publicKey);
      return;
    }
  } catch (error) {
    $("signin-error").textContent = error.message;
  }
  show("signin");
  $("key-text").focus();
}

start();
