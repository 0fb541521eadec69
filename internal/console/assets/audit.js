// audit.js: the Audit page.
"use strict";

(function (K) {
  const { state, main, el, field, errorBox, showError, post, kms, iam, trail, fmtDate, setPage, prettyJSON } = K;

  // ---- audit ----

  async function renderAudit() {
    const m = setPage("Audit");
    const err = errorBox();
    const banner = el("div", { id: "chain-banner", role: "status" }, "Checking the chain...");
    const f = {};
    const filters = el("form", { class: "card filters", role: "search", "aria-label": "Filter events" });
    for (const [key, label, type] of [["name", "Event name", "text"], ["user", "User", "text"], ["key", "Key", "text"], ["from", "From (UTC)", "datetime-local"], ["to", "To (UTC)", "datetime-local"]]) {
      const [w, input] = field(label, { type: type });
      f[key] = input;
      filters.append(w);
    }
    filters.addEventListener("input", () => draw());
    filters.addEventListener("submit", (e) => { e.preventDefault(); draw(); });
    const tbody = el("tbody");
    const count = el("p", { class: "muted", role: "status" });
    m.append(el("h1", {}, "Audit"), banner, filters, err, count,
      el("div", { class: "tablewrap" }, el("table", { class: "responsive", id: "audit-table" },
        el("thead", {}, el("tr", {}, ["Event time", "Event name", "User", "Key", "Error", ""].map((h) => el("th", { scope: "col" }, h)))), tbody)));
    post("audit/verify", {}).then((v) => {
      banner.className = v.verified ? "banner-ok" : "banner-bad";
      banner.textContent = v.verified
        ? "The audit chain verifies: " + v.chains.reduce((n, c) => n + c.records, 0) + " records, " + v.chains.reduce((n, c) => n + c.digests, 0) + " signed digests."
        : "The audit chain does NOT verify: " + v.chains.flatMap((c) => c.problems || []).join("; ");
    }).catch((e) => { banner.className = "banner-bad"; banner.textContent = "The chain could not be checked: " + e.type + ": " + e.message; });

    let events = [];
    try {
      const chains = (await trail("ListAuditChains", {})).Chains || [];
      for (const chain of chains) {
        let after = 0;
        for (let i = 0; i < 100; i++) {
          const page = await trail("GetAuditRecords", { Chain: chain, AfterSequence: after });
          for (const r of page.Records || []) {
            try { const ln = JSON.parse(r.Line); if (ln.event) events.push({ seq: r.Sequence, chain: chain, ev: ln.event }); } catch (e) { /* not a record */ }
            after = r.Sequence;
          }
          if (!page.Truncated) break;
        }
      }
    } catch (e) { showError(err, e); }
    events.sort((a, b) => (b.ev.eventTime || "").localeCompare(a.ev.eventTime || "") || b.seq - a.seq);

    function who(ev) { const u = ev.userIdentity || {}; return u.arn || u.userName || u.accessKeyId || u.type || ""; }
    function keysOf(ev) { return (ev.resources || []).map((r) => r.ARN || r.arn || "").join(" "); }
    function draw() {
      const name = f.name.value.trim().toLowerCase(), user = f.user.value.trim().toLowerCase(), key = f.key.value.trim().toLowerCase();
      const from = f.from.value ? new Date(f.from.value + "Z") : null, to = f.to.value ? new Date(f.to.value + "Z") : null;
      tbody.replaceChildren();
      let n = 0;
      for (const e of events) {
        const ev = e.ev, t = new Date(ev.eventTime);
        if (name && !(ev.eventName || "").toLowerCase().includes(name)) continue;
        if (user && !who(ev).toLowerCase().includes(user)) continue;
        if (key && !(keysOf(ev) + " " + JSON.stringify(ev.requestParameters || {})).toLowerCase().includes(key)) continue;
        if (from && t < from) continue;
        if (to && t > to) continue;
        if (++n > 500) break;
        const pre = el("pre", { hidden: true }, JSON.stringify(ev, null, 2));
        const btn = el("button", { type: "button", "aria-expanded": "false", onclick: () => { pre.hidden = !pre.hidden; btn.setAttribute("aria-expanded", String(!pre.hidden)); } }, "View event");
        tbody.append(el("tr", {},
          el("td", { "data-label": "Event time" }, fmtDate(ev.eventTime)),
          el("td", { "data-label": "Event name" }, (ev.eventName || "") + (ev.additionalEventData && ev.additionalEventData.recovered === true ? " (recovered)" : "")),
          el("td", { "data-label": "User" }, who(ev)),
          el("td", { "data-label": "Key" }, keysOf(ev)),
          el("td", { "data-label": "Error" }, ev.errorCode || ""),
          el("td", {}, btn, pre)));
      }
      count.textContent = (n > 500 ? "Showing the newest 500 of the matching events." : n + " matching events, newest first.");
    }
    draw();
  }

  Object.assign(K, { renderAudit });
})(window.KMS);
