// The "merchant notifications" panel (owner: notify): per endpoint, delivery success over the
// last hour and the retry backlog now. Values are set as text, never as HTML.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const pct = (x) => (x === null ? "-" : `${(x * 100).toFixed(1)} %`);
  const ms = (x) => (x === null ? "-" : `${x} ms`);

  async function refresh() {
    try {
      const r = await fetch("/dashboard/api/notifications?minutes=60", { credentials: "same-origin" });
      if (!r.ok) throw new Error(`${r.status} ${(await r.json()).detail || ""}`);
      const d = await r.json();
      const backlog = d.endpoints.reduce((n, e) => n + e.backlog.pending, 0);
      const n = d.endpoints.length;
      $("notify-total").textContent = `${n} endpoint${n === 1 ? "" : "s"}, backlog ${backlog}`;
      const body = $("notify-list").tBodies[0];
      body.replaceChildren();
      for (const e of d.endpoints) {
        const tr = body.insertRow();
        const cells = [e.endpoint, String(e.delivered), pct(e.success), String(e.retried),
          String(e.given_up), `${ms(e.p50_ms)} / ${ms(e.p99_ms)}`, String(e.backlog.pending),
          String(e.backlog.retrying), `${Math.round(e.backlog.oldest_s)} s`];
        for (const v of cells) tr.insertCell().textContent = v;
      }
      $("err-notify").textContent = "";
    } catch (e) {
      $("err-notify").textContent = String(e.message || e);
    }
  }

  refresh();
  setInterval(refresh, 10000);
})();
