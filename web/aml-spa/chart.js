// A grouped bar chart drawn as SVG by the page (no library, no inline styles: colours come
// from the classes `series-0` … in the style sheet).

const SVG = "http://www.w3.org/2000/svg";

function node(name, attributes = {}, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * `groups`: [{label, values: [n per series]}]; `series`: names. Answers an <svg> with a title,
 * axis, bars with tooltips and a legend.
 */
export function barChart(groups, series, title) {
  const width = 720;
  const height = 300;
  const left = 40;
  const bottom = 40;
  const top = 16;
  const plotHeight = height - bottom - top;
  const max = Math.max(1, ...groups.flatMap((g) => g.values));
  const step = Math.pow(10, Math.floor(Math.log10(max)));
  const ceiling = Math.ceil(max / step) * step;
  const svg = node("svg", {
    viewBox: `0 0 ${width} ${height + 24 * Math.ceil(series.length / 3)}`,
    role: "img",
    "aria-label": title,
    class: "chart",
  });
  svg.append(node("title", {}, title));
  for (let i = 0; i <= 4; i++) {
    const value = Math.round((ceiling * i) / 4);
    const y = top + plotHeight - (plotHeight * value) / ceiling;
    svg.append(node("line", { x1: left, x2: width, y1: y, y2: y, class: "gridline" }));
    svg.append(node("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, String(value)));
  }
  const slot = (width - left) / Math.max(1, groups.length);
  const bar = Math.max(2, (slot * 0.8) / Math.max(1, series.length));
  groups.forEach((group, g) => {
    const x0 = left + g * slot + slot * 0.1;
    group.values.forEach((value, s) => {
      const h = (plotHeight * value) / ceiling;
      const rect = node("rect", {
        x: x0 + s * bar,
        y: top + plotHeight - h,
        width: bar - 1,
        height: Math.max(h, 0),
        class: `series-${s % 6}`,
      });
      rect.append(node("title", {}, `${series[s]}, ${group.label}: ${value}`));
      svg.append(rect);
    });
    if (groups.length <= 16 || g % Math.ceil(groups.length / 16) === 0) {
      svg.append(
        node("text", { x: x0 + (slot * 0.8) / 2, y: height - bottom + 16, "text-anchor": "middle" }, group.label),
      );
    }
  });
  series.forEach((name, s) => {
    const x = left + (s % 3) * 220;
    const y = height + 24 * Math.floor(s / 3);
    svg.append(node("rect", { x, y: y - 10, width: 12, height: 12, class: `series-${s % 6}` }));
    svg.append(node("text", { x: x + 18, y }, name));
  });
  return svg;
}
