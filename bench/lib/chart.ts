/**
 * The chart of docs/benchmarks.md, drawn as plain SVG: one panel per scenario and load, one horizontal
 * bar per server, ours in colour and the peers in grey, each panel scaled to its own largest value.
 */
import { formatValue, type Row } from "./results.js";

const WIDTH = 820;
const LABEL_WIDTH = 250;
const BAR_HEIGHT = 16;
const BAR_GAP = 5;
const PANEL_GAP = 18;
const TITLE_HEIGHT = 20;

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Panels in table order: every scenario and load that has at least one value. */
function panels(rows: readonly Row[]): { title: string; bars: Row[] }[] {
  const result: { title: string; bars: Row[] }[] = [];
  for (const row of rows) {
    if (row.value === undefined) continue;
    const title =
      `${row.scenario}. ${row.title}, ${row.load}: ${row.metric} ` +
      `(${row.unit}, ${row.better === "higher" ? "higher" : "lower"} is better)`;
    const panel = result.find((p) => p.title === title);
    if (panel) panel.bars.push(row);
    else result.push({ title, bars: [row] });
  }
  return result;
}

export function chartSvg(rows: readonly Row[], caption: string): string {
  const parts: string[] = [];
  let y = 30;
  parts.push(`<text x="10" y="20" font-size="14" font-weight="bold">${escape(caption)}</text>`);
  for (const panel of panels(rows)) {
    y += PANEL_GAP;
    parts.push(`<text x="10" y="${y}" font-size="12" font-weight="bold">${escape(panel.title)}</text>`);
    y += TITLE_HEIGHT - 12;
    const largest = Math.max(...panel.bars.map((bar) => bar.value!), 1e-9);
    for (const bar of panel.bars) {
      const width = Math.max(1, ((WIDTH - LABEL_WIDTH - 110) * bar.value!) / largest);
      const fill = bar.ours ? "#2b6cb0" : "#a0aec0";
      parts.push(
        `<text x="${LABEL_WIDTH - 6}" y="${y + BAR_HEIGHT - 4}" font-size="11" text-anchor="end">${escape(bar.label)}</text>`,
        `<rect x="${LABEL_WIDTH}" y="${y}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" fill="${fill}"/>`,
        `<text x="${(LABEL_WIDTH + width + 5).toFixed(1)}" y="${y + BAR_HEIGHT - 4}" font-size="11">${escape(formatValue(bar.value, bar.unit))}</text>`,
      );
      y += BAR_HEIGHT + BAR_GAP;
    }
  }
  const height = y + 10;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
    `font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`
  );
}
