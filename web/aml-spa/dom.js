// Small DOM helpers the views share: elements, tables, and times in words.

export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === undefined || value === null) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, value);
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return element;
}

export function table(headers, rows, caption) {
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      {},
      caption ? el("caption", {}, caption) : null,
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
    ),
  );
}

export function fieldTable(pairs, caption) {
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      { class: "fields" },
      caption ? el("caption", {}, caption) : null,
      el("tbody", {}, pairs.map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, v)))),
    ),
  );
}

export function time(timestamp) {
  if (!timestamp) return "–";
  if (timestamp.t_s === "never") return "never";
  return new Date(timestamp.t_s * 1000).toISOString().replace("T", " ").replace(/\.000Z$/, " UTC");
}

export function duration(relative) {
  if (!relative || relative.d_us === "forever") return "forever";
  const seconds = relative.d_us / 1e6;
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (seconds >= size && seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${unit}${n === 1 ? "" : "s"}`;
    }
  }
  return `${seconds} s`;
}
