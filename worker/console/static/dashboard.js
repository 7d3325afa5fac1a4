// Troupe dashboard: draws the overview's charts with uPlot and keeps its table current from /api/history.
// Loaded as a file (the page's CSP allows no inline script); values are written with textContent only.
"use strict";

(function () {
  const section = document.getElementById("charts");
  if (!section || typeof uPlot === "undefined") return;
  const historyUrl = section.dataset.history;
  const interval = Math.max(500, Number(section.dataset.interval) || 2000);
  const palette = ["#3b82f6", "#ef4444", "#10b981", "#f59e0b", "#8b5cf6", "#ec4899", "#14b8a6", "#64748b", "#84cc16", "#f97316"];
  const samples = [];
  const charts = new Map();
  let since = 0;

  function queuesOf(list) {
    const names = new Set();
    for (const s of list) for (const q of s.queues) names.add(q.queue);
    return [...names].sort();
  }

  function seriesFor(kind, names) {
    if (kind === "throughput") return [{ label: "done/s", key: "donePerSec" }, { label: "dead/s", key: "deadPerSec" }];
    return names.map((name) => ({ label: name, key: kind, queue: name }));
  }

  function dataFor(kind, series) {
    const xs = samples.map((s) => s.at / 1000);
    const ys = series.map((line) =>
      samples.map((s) => {
        if (kind === "throughput") {
          let sum = null;
          for (const q of s.queues) if (typeof q[line.key] === "number") sum = (sum ?? 0) + q[line.key];
          return sum;
        }
        const q = s.queues.find((row) => row.queue === line.queue);
        return q ? q[line.key] : null;
      }),
    );
    return [xs, ...ys];
  }

  function draw() {
    const names = queuesOf(samples);
    for (const el of section.querySelectorAll(".chart")) {
      const kind = el.dataset.series;
      const series = seriesFor(kind, names);
      const signature = series.map((s) => s.label).join("\u0000");
      const data = dataFor(kind, series);
      const existing = charts.get(el);
      if (existing && existing.signature === signature) {
        existing.plot.setData(data);
        continue;
      }
      if (existing) existing.plot.destroy();
      const width = Math.max(280, el.clientWidth || 400);
      const plot = new uPlot(
        {
          width,
          height: 180,
          scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(1, max ?? 1) * 1.1] } },
          series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: palette[i % palette.length], width: 2, spanGaps: true }))],
          axes: [{}, { size: 50 }],
          legend: { live: true },
        },
        data,
        el,
      );
      charts.set(el, { plot, signature });
    }
  }

  function format(key, value) {
    if (value === undefined || value === null) return "–";
    if (key.endsWith("PerSec")) return value >= 100 ? value.toFixed(0) : value.toFixed(1);
    return String(value);
  }

  function updateTable(latest) {
    for (const row of document.querySelectorAll("tr[data-queue]")) {
      const q = latest.queues.find((r) => r.queue === row.dataset.queue);
      if (!q) continue;
      for (const cell of row.querySelectorAll("[data-field]")) {
        const target = cell.querySelector("a") || cell;
        target.textContent = format(cell.dataset.field, q[cell.dataset.field]);
        if (cell.dataset.field === "dead") cell.classList.toggle("bad", q.dead > 0);
      }
    }
    const time = document.querySelector("time[data-at]");
    if (time) time.textContent = new Date(latest.at).toISOString();
  }

  async function poll() {
    try {
      const res = await fetch(`${historyUrl}?since=${since}`, { headers: { Accept: "application/json" } });
      if (res.ok) {
        const body = await res.json();
        for (const s of body.samples) samples.push(s);
        while (samples.length > 600) samples.shift();
        if (samples.length) {
          since = samples[samples.length - 1].at;
          updateTable(samples[samples.length - 1]);
        }
        draw();
        section.dataset.ready = String(samples.length);
      }
    } finally {
      setTimeout(poll, interval);
    }
  }

  poll();
})();
