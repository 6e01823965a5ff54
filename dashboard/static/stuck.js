// The "stuck payments" panel (owner: ops): payments waiting on their provider for longer than
// the configured time, oldest first, read with the page's session cookie (dashboard.js does
// the sign-in). Values are set as text, never as HTML.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);

  function waited(s) {
    return s >= 7200 ? `${(s / 3600).toFixed(1)} h` : `${Math.round(s / 60)} min`;
  }

  async function refresh() {
    try {
      const r = await fetch("/dashboard/api/stuck?limit=20", { credentials: "same-origin" });
      if (!r.ok) throw new Error(`${r.status} ${(await r.json()).detail || ""}`);
      const d = await r.json();
      $("stuck-total").textContent =
        `${d.payments.length}${d.more ? "+" : ""} waiting > ${waited(d.older_than_s)}`;
      const body = $("stuck-list").tBodies[0];
      body.replaceChildren();
      for (const p of d.payments) {
        const tr = body.insertRow();
        const amount = p.amount === null ? "" : `${p.amount} ${p.currency || ""}`;
        const cells = [p.provider, p.external_id, p.status, p.order_id || "", amount,
          new Date(p.updated_at).toISOString(), waited(p.waiting_s)];
        for (const v of cells) tr.insertCell().textContent = v;
      }
      $("err-stuck").textContent = "";
    } catch (e) {
      $("err-stuck").textContent = String(e.message || e);
    }
  }

  refresh();
  setInterval(refresh, 30000);
})();
