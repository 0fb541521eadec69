// audit.js: the Audit page.
"use strict";

(function (K) {
  const { state, main, el, field, errorBox, showError, post, kms, iam, trail, fmtDate, setPage, prettyJSON } = K;

  // ---- audit ----

  // The page reads at most the newest WINDOW lines of each chain: a trail
  // read whole from its start would cost the browser the whole trail, and
  // one read from its start up to a bound would leave out the newest
  // events of a long one.
  const WINDOW = 100000;
  // ... and at most BUDGET bytes of them: every caller's records are up
  // to 64 KiB, and 100,000 such would be gigabytes, which no browser tab
  // reads and keeps.
  const BUDGET = 64 << 20;
  // PAGE is about the bytes of one answer of GetAuditRecords.
  const PAGE = 4 << 20;

  // hasAfter reports whether chain holds a line after position after that
  // the caller may see, or lines it has not reached yet.
  async function hasAfter(chain, after) {
    const p = await trail("GetAuditRecords", { Chain: chain, AfterSequence: after, Limit: 1 });
    return (p.Records || []).length > 0 || p.Truncated === true;
  }

  // windowStart returns the position after which the newest WINDOW lines
  // of chain begin (0 for a chain no longer than that), finding the
  // chain's end by doubling, then halving, the position asked for.
  async function windowStart(chain) {
    if (!(await hasAfter(chain, WINDOW))) return 0;
    let lo = WINDOW, hi = 2 * WINDOW; // a line follows lo
    while (await hasAfter(chain, hi)) { lo = hi; hi *= 2; }
    while (hi - lo > 1) {             // the last line is after lo, at or before hi
      const mid = Math.floor((lo + hi) / 2);
      if (await hasAfter(chain, mid)) lo = mid; else hi = mid;
    }
    return hi - WINDOW;
  }

  // chainEnd returns the position of chain's last line (0 if none),
  // found as windowStart finds it.
  async function chainEnd(chain) {
    if (!(await hasAfter(chain, 0))) return 0;
    let lo = 0, hi = 1024;
    while (await hasAfter(chain, hi)) { lo = hi; hi *= 2; }
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await hasAfter(chain, mid)) lo = mid; else hi = mid;
    }
    return hi;
  }

  // newestByBytes returns the newest records of chain that fit in
  // BUDGET bytes, among its newest WINDOW lines, oldest first: it reads
  // back from the chain's end, a block of positions at a time, each block
  // sized from avg, the bytes of a line so far, to fill about one answer.
  async function newestByBytes(chain, avg) {
    const end = await chainEnd(chain);
    const floor = Math.max(0, end - WINDOW);
    const kept = [];
    let bytes = 0, hi = end;
    while (hi > floor && bytes < BUDGET) {
      const from = Math.max(floor, hi - Math.max(1, Math.min(1000, Math.floor(PAGE / Math.max(avg, 1)))));
      const block = [];
      let after = from, read = 0, n = 0;
      for (let i = 0; i < 1000 && after < hi; i++) {
        const page = await trail("GetAuditRecords", { Chain: chain, AfterSequence: after, Limit: Math.max(1, Math.min(1000, hi - after)) });
        for (const r of page.Records || []) {
          if (r.Sequence <= hi) { block.push(r); read += r.Line.length; n++; }
        }
        if (!page.Truncated || !(page.LastSequence > after)) break;
        after = page.LastSequence;
      }
      if (n) avg = read / n;
      for (let i = block.length - 1; i >= 0 && bytes < BUDGET; i--) {
        kept.push(block[i]);
        bytes += block[i].Line.length;
      }
      hi = from;
    }
    return { records: kept.reverse(), cut: bytes >= BUDGET && hi > floor };
  }

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
    }).catch((e) => {
      // Only a reader of every account's records has the whole chain checked.
      if (e.type === "AccessDeniedException") { banner.hidden = true; return; }
      banner.className = "banner-bad"; banner.textContent = "The chain could not be checked: " + e.type + ": " + e.message;
    });

    let events = [];
    let windowed = false; // a chain was read from its newest WINDOW lines only
    let cut = false;      // or from its newest BUDGET bytes only
    const add = (chain, records) => {
      for (const r of records) {
        try { const ln = JSON.parse(r.Line); if (ln.event) events.push({ seq: r.Sequence, chain: chain, ev: ln.event }); } catch (e) { /* not a record */ }
      }
    };
    try {
      const chains = (await trail("ListAuditChains", {})).Chains || [];
      for (const chain of chains) {
        let after = await windowStart(chain);
        windowed = windowed || after > 0;
        // Up to the end: a window's lines, and those written meanwhile;
        // past BUDGET bytes, the newest that fit, read from the end.
        const records = [];
        let bytes = 0;
        for (let i = 0; i < 1000; i++) {
          const page = await trail("GetAuditRecords", { Chain: chain, AfterSequence: after });
          for (const r of page.Records || []) { records.push(r); bytes += r.Line.length; }
          after = page.LastSequence > after ? page.LastSequence : after;
          if (!page.Truncated || bytes > BUDGET) break;
        }
        if (bytes > BUDGET) {
          const newest = await newestByBytes(chain, bytes / records.length);
          cut = cut || newest.cut;
          add(chain, newest.records);
        } else {
          add(chain, records);
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
      count.textContent = (n > 500 ? "Showing the newest 500 of the matching events." : n + " matching events, newest first.") +
        (windowed ? " Only the newest " + WINDOW.toLocaleString("en-US") + " records of the trail were read: kms audit events reads it all." : "") +
        (cut ? " Only the newest " + (BUDGET >> 20) + " MiB of records of the trail were read: kms audit events reads it all." : "");
    }
    draw();
  }

  Object.assign(K, { renderAudit });
})(window.KMS);
