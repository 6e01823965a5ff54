// The dashboard page: calls the JSON API with the session cookie that the login form set
// (HttpOnly: this script never sees a token), draws the charts (charts.js) and refreshes
// every 10 s; a 401 (session expired, token rotated out) goes back to the login form. Text
// from the API is only ever set as text.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const STATUS_COLORS = {
    new: "#9aa4b8", pending: "#e0a106", confirmed: "#5b8def", completed: "#1f9d55",
    underpaid: "#d9730d", overpaid: "#8e5bd8", expired: "#7b8794", failed: "#d64545",
    refunded: "#2a9d8f", canceled: "#5f6b7a",
  };
  const GROUP_COLORS = ["#3b6fd8", "#1f9d55", "#d9730d", "#8e5bd8"];

  async function api(path) {
    const r = await fetch(path, { credentials: "same-origin" });
    if (r.status === 401) {
      window.location.assign("/dashboard/login");
      throw new Error("signed out");
    }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.detail || "HTTP " + r.status);
    return body;
  }

  function windowMinutes() {
    return Number($("window").value) || 60;
  }

  async function statuses() {
    const d = await api("/dashboard/api/statuses");
    $("tx-total").textContent = d.total + " total";
    Charts.bars($("chart-statuses"), "statuses", d.by_status.map((s) => ({
      label: s.status, value: s.count, color: STATUS_COLORS[s.status],
    })));
  }

  async function throughput() {
    const m = windowMinutes();
    const d = await api("/dashboard/api/throughput?minutes=" + m);
    const to = Date.now(), from = to - m * 60000;
    Charts.lines($("chart-throughput"), "throughput", [
      { name: "distinct events", color: "#3b6fd8", points: d.events },
      { name: "deliveries received", color: "#e0a106", points: d.deliveries },
    ], { from, to, stepMs: 60000 });
  }

  async function latency() {
    const m = windowMinutes();
    const d = await api("/dashboard/api/latency?minutes=" + m);
    const to = Date.now(), from = to - m * 60000;
    const pick = (q) => d.points.map((p) => [p.t, p[q]]);
    const w = d.window;
    $("latency-window").textContent = w.deliveries
      ? `window p50 ${Charts.fmt(w.p50)} · p90 ${Charts.fmt(w.p90)} · p99 ${Charts.fmt(w.p99)}`
      : "";
    Charts.lines($("chart-latency"), "latency", [
      { name: "p50", color: "#1f9d55", points: pick("p50") },
      { name: "p90", color: "#e0a106", points: pick("p90") },
      { name: "p99", color: "#d64545", points: pick("p99") },
    ], { from, to, gapMs: 60000 });
  }

  async function lag() {
    const d = await api("/dashboard/api/lag");
    const groups = Object.keys(d.total_by_group);
    $("lag-total").textContent = groups.map((g) => `${g}: ${d.total_by_group[g]}`).join(", ");
    Charts.rows($("chart-lag"), "lag", d.partitions.map((p) => ({
      label: `${p.group}  ${p.topic}/${p.partition}`,
      value: p.lag,
      note: p.committed === null ? ` (-/${p.end})` : ` (${p.committed}/${p.end})`,
      color: GROUP_COLORS[groups.indexOf(p.group) % GROUP_COLORS.length],
    })));
  }

  async function deadLetters() {
    const d = await api("/dashboard/api/dead-letters?limit=12");
    $("dead-total").textContent = d.total + " total";
    Charts.bars($("chart-dead"), "dead-letters", d.by_stage.map((s) => ({
      label: s.stage, value: s.count, color: "#d64545",
    })), { width: 320, height: 200 });
    const body = $("dead-recent").tBodies[0];
    body.replaceChildren();
    for (const r of d.recent) {
      const tr = body.insertRow();
      const cells = [new Date(r.failed_at).toLocaleString(), r.stage, r.provider, r.reason, r.source];
      cells.forEach((v, k) => {
        const td = tr.insertCell();
        td.textContent = v;
        if (k === 3) td.className = "reason";
      });
    }
  }

  const PANELS = [
    ["statuses", statuses], ["throughput", throughput], ["latency", latency],
    ["lag", lag], ["dead", deadLetters],
  ];

  async function refresh() {
    const results = await Promise.allSettled(PANELS.map(([, f]) => f()));
    let errors = 0;
    results.forEach((r, k) => {
      const msg = r.status === "rejected" ? String(r.reason.message || r.reason) : "";
      if (msg) errors += 1;
      $("err-" + PANELS[k][0]).textContent = msg;
    });
    $("status").textContent = (errors ? `${errors} panel(s) failed, ` : "") +
      "updated " + new Date().toLocaleTimeString();
    document.body.dataset.errors = String(errors);
    document.body.dataset.state = "ready";
  }

  $("window").addEventListener("change", refresh);
  refresh();
  setInterval(refresh, 10000);
})();
