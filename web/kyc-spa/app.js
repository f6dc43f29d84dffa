// The customer's KYC page: what the exchange requires of this account and why.
import { request, errorText } from "../web/common/api.js";

const main = document.getElementById("main");

/** The access token: the last segment of the page's address. */
const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

async function load() {
  try {
    const { status, body } = await request(`kyc-info/${encodeURIComponent(token)}`);
    if (status === 204 || !body) {
      show(element("p", { class: "notice", id: "done" }, "Nothing is required of you: done."));
      return;
    }
    show(
      element("h2", {}, "What is required"),
      ...body.requirements.map((requirement) =>
        element("section", { class: "card" }, element("p", {}, requirement.description)),
      ),
    );
  } catch (error) {
    show(element("p", { class: "alert", role: "alert" }, errorText(error)));
  }
}

load();
