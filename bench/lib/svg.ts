/**
 * The report's chart as one hand-written SVG (no browser, no plotting library): ratio to Check
 * and latency percentiles per scenario, per-call growth, watch delivery. Rows are labelled on the
 * left; each panel has its own axis.
 */
import { findUnary, perCallGrowth, type BenchReport, type UnaryEntry } from "./report.js";

const WIDTH = 1180;
const LABEL_W = 330;
const ROW_H = 18;
const GAP = 24;
const FONT = "font-family='system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif'";

export const STORE_COLORS: Record<string, string> = {
  memory: "#4e79a7",
  sqlite: "#59a14f",
  postgres: "#e15759",
  postgres2: "#f28e2b",
  bare: "#9c755f",
};

/** Ratio targets drawn as red ticks: [store, scenario, minimum]. */
const RATIO_TARGETS: [string, string, number][] = [
  ["memory", "exec", 0.85],
  ["sqlite", "exec", 0.6],
  ["sqlite", "exec-hot", 0.4],
  ["memory", "get", 0.9],
  ["sqlite", "get", 0.9],
];

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]!);
}

/** Row labels stop before the first panel (about 5.6 px per character at 11.5 px). */
export function fitLabel(label: string, max = Math.floor((LABEL_W - 34) / 5.6)): string {
  return label.length <= max ? label : `${label.slice(0, max - 1)}…`;
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2));
/** Axis ticks are powers of ten: 0.1, 1, 10, 1000 (no trailing zeros). */
const tickLabel = (x: number) => String(Number(x.toPrecision(1)));

/** A log-scale axis mapping [lo, hi] (powers of ten around the data) onto [x0, x0 + w]. */
export function logScale(values: number[], x0: number, w: number) {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  const lo = 10 ** Math.floor(Math.log10(finite.length ? Math.min(...finite) : 1));
  const hi = 10 ** Math.ceil(Math.log10(finite.length ? Math.max(...finite) * 1.0001 : 10));
  const top = hi > lo ? hi : lo * 10;
  const x = (v: number) => x0 + (w * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(top) - Math.log10(lo));
  const ticks: number[] = [];
  for (let t = lo; t <= top * 1.0001; t *= 10) ticks.push(t);
  return { x, ticks, lo, hi: top };
}

interface Row {
  label: string;
  color: string;
  /** A group heading row (no data). */
  heading?: boolean;
  entry?: UnaryEntry;
}

class Svg {
  parts: string[] = [];
  y = 0;
  text(x: number, y: number, s: string, opts: { size?: number; anchor?: string; weight?: string; fill?: string } = {}) {
    this.parts.push(
      `<text x='${x.toFixed(1)}' y='${y.toFixed(1)}' font-size='${opts.size ?? 12}' text-anchor='${opts.anchor ?? "start"}'` +
        `${opts.weight ? ` font-weight='${opts.weight}'` : ""} fill='${opts.fill ?? "#222"}'>${escapeXml(s)}</text>`,
    );
  }
  line(x1: number, y1: number, x2: number, y2: number, stroke: string, extra = "") {
    this.parts.push(`<line x1='${x1.toFixed(1)}' y1='${y1.toFixed(1)}' x2='${x2.toFixed(1)}' y2='${y2.toFixed(1)}' stroke='${stroke}' ${extra}/>`);
  }
  rect(x: number, y: number, w: number, h: number, fill: string, extra = "") {
    this.parts.push(`<rect x='${x.toFixed(1)}' y='${y.toFixed(1)}' width='${Math.max(0, w).toFixed(1)}' height='${h.toFixed(1)}' fill='${fill}' ${extra}/>`);
  }
  circle(x: number, y: number, r: number, fill: string, extra = "") {
    this.parts.push(`<circle cx='${x.toFixed(1)}' cy='${y.toFixed(1)}' r='${r}' fill='${fill}' ${extra}/>`);
  }
  title(s: string, sub?: string) {
    this.y += GAP;
    this.text(12, this.y, s, { size: 15, weight: "600" });
    if (sub) {
      this.y += 16;
      this.text(12, this.y, sub, { size: 11, fill: "#555" });
    }
    this.y += 10;
  }
  /** Row labels and zebra stripes; returns each row's vertical centre. */
  rows(rows: Row[]): number[] {
    const centres: number[] = [];
    rows.forEach((r, i) => {
      const top = this.y + i * ROW_H;
      if (!r.heading && i % 2 === 0) this.rect(0, top, WIDTH, ROW_H, "#f6f6f6");
      if (r.heading) this.text(12, top + 13, r.label, { weight: "600", fill: r.color });
      else this.text(24, top + 13, fitLabel(r.label), { size: 11.5 });
      centres.push(top + ROW_H / 2);
    });
    return centres;
  }
  axisLabels(ticks: number[], x: (v: number) => number, top: number, bottom: number, label: (v: number) => string) {
    for (const t of ticks) {
      this.line(x(t), top, x(t), bottom, "#ccc", "stroke-width='1'");
      this.text(x(t), bottom + 12, label(t), { size: 10, anchor: "middle", fill: "#555" });
    }
  }
}

function unaryRows(report: BenchReport): Row[] {
  const rows: Row[] = [];
  const order: [string, string][] = [
    ["throughput", "memory"],
    ["defsize", "memory"],
    ["throughput", "sqlite"],
    ["defsize", "sqlite"],
    ["throughput", "postgres"],
    ["throughput", "postgres2"],
    ["bare", "bare"],
  ];
  let lastStore = "";
  for (const [part, store] of order) {
    const entries = report.unary.filter((u) => u.part === part && u.store === store);
    if (entries.length === 0) continue;
    if (store !== lastStore) rows.push({ label: entries[0]!.storeLabel, color: STORE_COLORS[store] ?? "#333", heading: true });
    lastStore = store;
    for (const e of entries) rows.push({ label: e.title, color: STORE_COLORS[store] ?? "#333", entry: e });
  }
  return rows;
}

/** Renders the whole chart. */
export function renderSvg(report: BenchReport): string {
  const svg = new Svg();
  const m = report.machine as Record<string, string | number>;
  svg.y = 22;
  svg.text(12, svg.y, `Workflow engine bench: ${report.name}`, { size: 16, weight: "700" });
  if (report.note) {
    svg.y += 17;
    svg.text(12, svg.y, report.note.length > 190 ? `${report.note.slice(0, 189)}…` : report.note, { size: 12, weight: "600", fill: "#b03030" });
  }
  svg.y += 16;
  svg.text(12, svg.y, `${report.startedAt.slice(0, 16).replace("T", " ")} UTC, ${m.cpuModel}, ${m.cores} cores, Node ${m.node}; medians of ${(report.settings as { rounds: number }).rounds} rounds, ${(report.settings as { clients: number }).clients} h2load clients`, {
    size: 11,
    fill: "#555",
  });

  // ---- unary: ratio (left panel) and latency (right panel)
  const rows = unaryRows(report);
  if (rows.length) {
    svg.title("Unary calls: throughput as a ratio to grpc.health.v1 Check, and latency", "left: ratio (1.0 = as fast as Check on the same server; red ticks = targets); right: p50 (dot) to p99 (bar end), ms, log scale; grey = Check");
    const ratioX0 = LABEL_W;
    const ratioW = 330;
    const latX0 = ratioX0 + ratioW + 70;
    const latW = WIDTH - latX0 - 30;
    const ratios = rows.flatMap((r) => (r.entry ? [r.entry.figures.median.ratio] : []));
    const maxRatio = Math.max(1.1, ...ratios.filter(Number.isFinite)) * 1.05;
    const rx = (v: number) => ratioX0 + (ratioW * Math.max(0, Math.min(v, maxRatio))) / maxRatio;
    const lat = logScale(
      rows.flatMap((r) => (r.entry ? [r.entry.figures.median.p50, r.entry.figures.median.p99, r.entry.figures.median.baselineP50, r.entry.figures.median.baselineP99] : [])),
      latX0,
      latW,
    );
    const top = svg.y;
    const centres = svg.rows(rows);
    const bottom = svg.y + rows.length * ROW_H;
    const ratioTicks = [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4].filter((t) => t <= maxRatio);
    svg.axisLabels(ratioTicks, rx, top, bottom, (t) => String(t));
    svg.line(rx(1), top, rx(1), bottom, "#888", "stroke-dasharray='4 3'");
    svg.axisLabels(lat.ticks, lat.x, top, bottom, (t) => `${tickLabel(t)} ms`);
    rows.forEach((r, i) => {
      const e = r.entry;
      if (!e) return;
      const c = centres[i]!;
      const med = e.figures.median;
      svg.rect(ratioX0, c - 5, rx(med.ratio) - ratioX0, 10, r.color);
      let labelX = rx(med.ratio) + 4;
      for (const [store, scenario, min] of RATIO_TARGETS) {
        if (e.part === "throughput" && e.store === store && e.scenario === scenario) {
          svg.line(rx(min), c - 8, rx(min), c + 8, "#d62728", "stroke-width='2'");
          if (Math.abs(rx(min) - labelX) < 28) labelX = Math.max(labelX, rx(min) + 4);
        }
      }
      svg.text(labelX, c + 4, Number.isFinite(med.ratio) ? med.ratio.toFixed(2) : "n/a", { size: 10.5 });
      if (Number.isFinite(med.baselineP50)) {
        svg.line(lat.x(med.baselineP50), c + 5, lat.x(med.baselineP99), c + 5, "#aaa", "stroke-width='3'");
      }
      if (Number.isFinite(med.p50)) {
        svg.line(lat.x(med.p50), c - 1, lat.x(med.p99), c - 1, r.color, "stroke-width='5'");
        svg.circle(lat.x(med.p50), c - 1, 3.5, "#fff", `stroke='${r.color}' stroke-width='2'`);
        svg.text(lat.x(med.p99) + 4, c + 3, `${fmt(med.p50)} / ${fmt(med.p99)}`, { size: 9.5, fill: "#444" });
      }
    });
    svg.y = bottom + 14;
  }

  // ---- growth: per-call cost at the large size vs the small one
  const growth = report.unary
    .filter((u) => u.part === "growth")
    .map((large) => {
      const small = findUnary(report, "throughput", large.store, large.scenario);
      return { large, x: small ? perCallGrowth(small, large) : NaN };
    })
    .filter((g) => Number.isFinite(g.x));
  if (growth.length) {
    const sizes = report.growth.map((g) => `${g.storeLabel} ${g.large.toLocaleString("en-US")}`).join(", ");
    svg.title("Growth: per-call cost with many stored instances vs 1,000 (log scale; target <= 1.2x)", `large sizes: ${sizes}; cost per call from the ratios to Check, each in its own run`);
    const gRows: Row[] = [];
    let last = "";
    for (const g of growth) {
      if (g.large.store !== last) gRows.push({ label: g.large.storeLabel, color: STORE_COLORS[g.large.store] ?? "#333", heading: true });
      last = g.large.store;
      gRows.push({ label: g.large.title, color: STORE_COLORS[g.large.store] ?? "#333", entry: g.large });
    }
    const x0 = LABEL_W;
    const w = WIDTH - x0 - 90;
    const scale = logScale([0.5, 2, ...growth.map((g) => g.x)], x0, w);
    const top = svg.y;
    const centres = svg.rows(gRows);
    const bottom = svg.y + gRows.length * ROW_H;
    svg.axisLabels(scale.ticks, scale.x, top, bottom, (t) => `${tickLabel(t)}x`);
    svg.line(scale.x(1.2), top, scale.x(1.2), bottom, "#d62728", "stroke-dasharray='4 3' stroke-width='1.5'");
    let gi = 0;
    gRows.forEach((r, i) => {
      if (!r.entry) return;
      const { x } = growth[gi++]!;
      const c = centres[i]!;
      const from = scale.x(Math.min(1, x));
      svg.rect(Math.min(from, scale.x(x)), c - 5, Math.abs(scale.x(x) - scale.x(1)), 10, x > 1.2 ? "#d62728" : r.color);
      svg.text(Math.max(scale.x(x), scale.x(1)) + 4, c + 4, `${fmt(x)}x`, { size: 10.5 });
    });
    svg.y = bottom + 14;
  }

  // ---- watch delivery
  if (report.watch.length) {
    svg.title("Watch delivery, commit to receipt: the server vs a bare grpc-js broadcast of the same payload", "p50 (dot) to p99 (bar end), ms, log scale; per (event, watcher) delivery");
    const wRows: Row[] = [];
    for (const w of report.watch) {
      wRows.push({ label: `${w.watchers.toLocaleString("en-US")} watchers: server`, color: STORE_COLORS.memory! });
      wRows.push({ label: `${w.watchers.toLocaleString("en-US")} watchers: bare broadcast`, color: STORE_COLORS.bare! });
    }
    const x0 = LABEL_W;
    const w = WIDTH - x0 - 110;
    const scale = logScale(report.watch.flatMap((x) => [x.server.deliveries.p50, x.server.deliveries.p99, x.bare.deliveries.p50, x.bare.deliveries.p99]), x0, w);
    const top = svg.y;
    const centres = svg.rows(wRows);
    const bottom = svg.y + wRows.length * ROW_H;
    svg.axisLabels(scale.ticks, scale.x, top, bottom, (t) => `${tickLabel(t)} ms`);
    report.watch.forEach((wEntry, i) => {
      for (const [k, figures] of [
        [0, wEntry.server],
        [1, wEntry.bare],
      ] as const) {
        const c = centres[2 * i + k]!;
        const color = wRows[2 * i + k]!.color;
        const d = figures.deliveries;
        if (!Number.isFinite(d.p50)) continue;
        svg.line(scale.x(d.p50), c, scale.x(d.p99), c, color, "stroke-width='6'");
        svg.circle(scale.x(d.p50), c, 3.5, "#fff", `stroke='${color}' stroke-width='2'`);
        svg.text(scale.x(d.p99) + 5, c + 4, `${fmt(d.p50)} / ${fmt(d.p99)} ms`, { size: 10.5 });
      }
    });
    svg.y = bottom + 14;
  }

  const height = Math.ceil(svg.y + 16);
  return [
    `<svg xmlns='http://www.w3.org/2000/svg' width='${WIDTH}' height='${height}' viewBox='0 0 ${WIDTH} ${height}' ${FONT}>`,
    `<rect width='${WIDTH}' height='${height}' fill='#fff'/>`,
    ...svg.parts,
    "</svg>",
    "",
  ].join("\n");
}
