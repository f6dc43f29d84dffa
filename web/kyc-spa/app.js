// The customer's KYC page: what the exchange requires of this account and why, a way to do
// each step, and a long poll of kyc-info that updates the page when a step completes.
import { ApiError, errorText, postJson, request } from "../web/common/api.js";
import { inputType, requirementState, summary, uploadData, validate } from "./logic.js";

const main = document.getElementById("main");
/** The access token: the last segment of the page's address. */
const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
/** kyc-info's answer to a token it does not know. */
const TOKEN_UNKNOWN = 1919;
/** How often a page that says "done" asks whether something new is required. */
const DONE_RECHECK_MS = 30000;
/** How long one long poll waits on the server. */
const POLL_MS = 25000;

// Steps this tab sent or started survive the trip to the provider and back.
const remembered = (name) => new Set(JSON.parse(sessionStorage.getItem(`${name}:${token}`) || "[]"));
const sent = remembered("sent");
const started = remembered("started");
function remember(name, set, id) {
  set.add(id);
  sessionStorage.setItem(`${name}:${token}`, JSON.stringify([...set]));
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== false && value != null) node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

function alertBox(text) {
  return element("p", { class: "alert", role: "alert" }, text);
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function showDone() {
  show(
    element("p", { class: "notice", id: "done" },
      element("strong", {}, "Done. "),
      "Nothing more is required of you; you may close this page."),
  );
}

function render(information) {
  const list = element("ol", { class: "plain" });
  information.requirements.forEach((requirement, index) => {
    list.append(element("li", {}, requirementCard(requirement, index)));
  });
  show(
    element("h2", {}, "What is required"),
    element("p", { class: "muted" },
      "The exchange must know who its customers are before it lets this account go on. ",
      summary(information)),
    list,
  );
}

function requirementCard(requirement, index) {
  const state = requirementState(requirement, sent, started);
  const card = element("section", {
    class: "card requirement",
    "data-form": requirement.form,
    "aria-labelledby": `requirement-${index}`,
  });
  card.append(
    element("h3", { id: `requirement-${index}` }, requirement.description || "A step of the check"),
    element("p", {}, element("span", { class: `state ${state.tone}` }, state.label)),
  );
  if (requirement.form === "INFO") {
    card.append(element("p", { class: "muted" },
      "Nothing to do here for now; this page changes when the exchange decides."));
  } else if (requirement.form === "LINK") {
    const button = element("button", { type: "button" },
      started.has(requirement.id) ? "Continue at the provider" : "Start");
    button.addEventListener("click", () => startLink(requirement, card, button));
    card.append(button);
  } else {
    const button = element("button", { type: "button", "aria-expanded": "false" }, "Fill in the form");
    button.addEventListener("click", () => openForm(requirement, card, button));
    card.append(button);
  }
  return card;
}

function cardError(card, error) {
  card.querySelector(".alert")?.remove();
  card.append(alertBox(errorText(error)));
}

async function startLink(requirement, card, button) {
  button.disabled = true;
  try {
    const { body } = await postJson(`kyc-start/${encodeURIComponent(requirement.id)}`, {});
    remember("started", started, requirement.id);
    location.assign(body.redirect_url);
  } catch (error) {
    cardError(card, error);
    button.disabled = false;
  }
}

async function openForm(requirement, card, button) {
  button.disabled = true;
  try {
    const { body: form } = await request(`kyc-forms/${encodeURIComponent(requirement.form)}`);
    button.remove();
    card.querySelector(".alert")?.remove();
    card.append(formElement(requirement, form, card));
    card.querySelector("input")?.focus();
  } catch (error) {
    const unknown = error instanceof ApiError && error.status === 404;
    cardError(card, unknown
      ? new ApiError(404, error.code, `The exchange has no description of the form “${requirement.form}”, so it cannot be `
        + "shown here; please tell the exchange's operator")
      : error);
    button.disabled = false;
  }
}

function formElement(requirement, form, card) {
  const today = new Date().toISOString().slice(0, 10);
  const node = element("form", { novalidate: true, "data-form-id": form.id });
  if (form.title !== requirement.description) node.append(element("h4", {}, form.title));
  for (const field of form.fields) {
    const id = `field-${form.id}-${field.name}`;
    const described = [field.hint && `${id}-hint`, `${id}-error`].filter(Boolean).join(" ");
    node.append(
      ...[
        element("label", { for: id }, field.label, field.required ? "" : " (optional)"),
      element("input", {
        id,
        name: field.name,
        type: inputType(field),
        required: field.required,
        max: field.type === "date" && /BIRTH/.test(field.name) ? today : null,
        autocomplete: field.name === "FULL_NAME" ? "name" : field.name === "DATE_OF_BIRTH" ? "bday" : null,
        "aria-describedby": described,
      }),
      field.hint ? element("p", { class: "hint", id: `${id}-hint` }, field.hint) : null,
        element("p", { class: "field-error", id: `${id}-error` }),
      ].filter(Boolean),
    );
  }
  // A corrected field loses its complaint at once.
  node.addEventListener("input", (event) => {
    const input = event.target;
    if (input.getAttribute("aria-invalid") !== "true") return;
    input.setAttribute("aria-invalid", "false");
    document.getElementById(`${input.id}-error`).textContent = "";
  });
  const submit = element("button", { type: "submit" }, "Send");
  node.append(submit);
  node.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    for (const field of form.fields) {
      const input = node.elements.namedItem(field.name);
      values[field.name] = field.type === "file" ? input.files[0] || null : input.value;
    }
    const problems = validate(form, values, today);
    for (const field of form.fields) {
      const input = node.elements.namedItem(field.name);
      input.setAttribute("aria-invalid", problems[field.name] ? "true" : "false");
      document.getElementById(`${input.id}-error`).textContent = problems[field.name] || "";
    }
    const first = form.fields.find((field) => problems[field.name]);
    if (first) {
      node.elements.namedItem(first.name).focus();
      return;
    }
    submit.disabled = true;
    try {
      await request(`kyc-upload/${encodeURIComponent(requirement.id)}`, {
        method: "POST",
        body: uploadData(form, values),
      });
      remember("sent", sent, requirement.id);
      node.replaceWith(element("p", { class: "notice" }, "Sent. Thank you; the exchange is checking it."));
    } catch (error) {
      cardError(card, error);
      submit.disabled = false;
    }
  });
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Follows kyc-info: the first answer at once, then long polls that end when it changes. */
async function follow() {
  let etag = null;
  let backoff = 0;
  for (;;) {
    try {
      const wait = etag ? `?timeout_ms=${POLL_MS}` : "";
      const { status, headers, body } = await request(
        `kyc-info/${encodeURIComponent(token)}${wait}`,
        { cache: "no-store", headers: etag ? { "If-None-Match": etag } : {} },
      );
      backoff = 0;
      if (status === 204) {
        // Nothing is open; the exchange may ask again later, so look now and then.
        if (!main.querySelector("#done")) showDone();
        etag = null;
        await sleep(DONE_RECHECK_MS);
        continue;
      }
      if (status === 304) continue;
      etag = headers.get("ETag");
      render(body);
    } catch (error) {
      // A refusal is final; a lost connection is tried again, less and less often.
      if (error instanceof ApiError && error.code === TOKEN_UNKNOWN) {
        return show(alertBox("This address leads to no identity check: ask the exchange for a "
          + `new link. Error code ${error.code}.`));
      }
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
        return show(alertBox(errorText(error)));
      }
      main.querySelector(".offline")?.remove();
      main.prepend(element("p", { class: "alert offline", role: "status" },
        `${errorText(error)} Trying again…`));
      backoff = Math.min(backoff * 2 || 1000, 30000);
      await sleep(backoff);
      etag = null;
    }
  }
}

follow();
