// The OpenKMS web console: one page, routed by the URL fragment. Every
// action is a POST to /console/api/ with the session's CSRF token; the
// server runs it as the signed-in principal through the API's operations.
// Text from the server is only ever set as textContent, never as HTML.
"use strict";

// core.js: what every page shares, as window.KMS: the session's state,
// building the DOM, labelled fields, errors, and the console's API.
window.KMS = (function () {
  // region: the region of the KMS calls, chosen in the header.
  const state = { me: null, csrf: "", region: "" };
  const main = () => document.getElementById("main");

  // el builds an element: el("button", {type: "button", onclick: f}, "text", child...)
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k in e && typeof v !== "string") e[k] = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  let uid = 0;
  // field is a labelled input; returns [wrapper, input].
  function field(label, attrs, hint) {
    const id = "f" + (++uid);
    const input = el(attrs.tag || "input", Object.assign({ id: id }, attrs, { tag: undefined }));
    const parts = [el("label", { for: id }, label), input];
    if (hint) {
      const hid = id + "-hint";
      input.setAttribute("aria-describedby", hid);
      parts.push(el("div", { id: hid, class: "muted" }, hint));
    }
    return [el("div", {}, parts), input];
  }

  function errorBox() {
    return el("div", { class: "error", role: "alert", hidden: true });
  }
  function showError(box, err) {
    box.textContent = err ? (err.type ? err.type + ": " : "") + (err.message || String(err)) : "";
    box.hidden = !err;
  }

  class APIError extends Error {
    constructor(status, type, message) { super(message); this.status = status; this.type = type; }
  }

  async function post(path, body) {
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": state.csrf };
    if (path.startsWith("call/kms/") && state.region) headers["X-KMS-Region"] = state.region;
    const res = await fetch("api/" + path, {
      method: "POST",
      credentials: "same-origin",
      headers,
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    if (!res.ok) {
      if (res.status === 401 && path !== "signin" && path !== "session") {
        state.me = null;
        window.KMS.renderSignIn("Your session has ended. Sign in again.");
      }
      throw new APIError(res.status, data.__type || "Error", data.message || res.statusText);
    }
    return data;
  }
  const kms = (op, input) => post("call/kms/" + op, input);
  const iam = (op, input) => post("call/iam/" + op, input);
  const trail = (op, input) => post("call/trail/" + op, input);

  function fmtDate(v) {
    if (v === undefined || v === null || v === "") return "";
    const d = typeof v === "number" ? new Date(v * 1000) : new Date(v);
    return isNaN(d) ? String(v) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  // setPage starts a page: it empties main and returns a new container for
  // the page's content. A page still loading when the next one is opened
  // goes on writing into its own container, no longer in main, rather
  // than into the page now shown.
  function setPage(title) {
    document.title = title + " - OpenKMS console";
    const page = el("div", { class: "page" });
    main().replaceChildren(page);
    for (const a of document.querySelectorAll("#nav a")) {
      const here = location.hash.startsWith(a.getAttribute("href"));
      if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    return page;
  }

  // iamAll returns every item (member) of an IAM listing, following its
  // Marker while IsTruncated, for at most 50 pages of 1000.
  async function iamAll(op, input, member) {
    let out = [], marker;
    for (let i = 0; i < 50; i++) {
      const page = await iam(op, Object.assign({ MaxItems: "1000" }, input, marker ? { Marker: marker } : {}));
      out = out.concat(page[member] || []);
      if (!page.IsTruncated) break;
      marker = page.Marker;
    }
    return out;
  }
  function prettyJSON(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  return { state, main, el, field, errorBox, showError, post, kms, iam, trail, fmtDate, setPage, prettyJSON, iamAll };
})();
