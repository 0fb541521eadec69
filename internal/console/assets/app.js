// The OpenKMS web console: one page, routed by the URL fragment. Every
// action is a POST to /console/api/ with the session's CSRF token; the
// server runs it as the signed-in principal through the API's operations.
// Text from the server is only ever set as textContent, never as HTML.
"use strict";

(function () {
  const state = { me: null, csrf: "" };
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
    for (const c of children.flat()) {
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
    const res = await fetch("api/" + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    if (!res.ok) {
      if (res.status === 401 && path !== "signin" && path !== "session") {
        state.me = null;
        renderSignIn("Your session has ended. Sign in again.");
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

  function setPage(title) {
    document.title = title + " - OpenKMS console";
    const m = main();
    m.replaceChildren();
    for (const a of document.querySelectorAll("#nav a")) {
      const here = location.hash.startsWith(a.getAttribute("href"));
      if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    return m;
  }

  // ---- sign-in ----

  function renderSignIn(notice) {
    document.getElementById("nav").hidden = true;
    document.getElementById("signout").hidden = true;
    document.getElementById("whoami").textContent = "";
    const m = setPage("Sign in");
    const err = errorBox();
    let mode = "user";
    const [accW, acc] = field("Account ID", { type: "text", name: "account", autocomplete: "username", inputmode: "numeric" });
    const [userW, user] = field("IAM user name", { type: "text", name: "userName", autocomplete: "username" });
    const [pwW, pw] = field("Password", { type: "password", name: "password", autocomplete: "current-password" });
    const [akW, ak] = field("Access key ID", { type: "text", name: "accessKeyId", autocomplete: "off" });
    const [skW, sk] = field("Secret access key", { type: "password", name: "secretAccessKey", autocomplete: "off" });
    const [npW, np] = field("New password", { type: "password", name: "newPassword", autocomplete: "new-password" });
    const [cpW, cp] = field("Confirm new password", { type: "password", autocomplete: "new-password" });
    const resetPart = el("div", { hidden: true },
      el("div", { class: "notice", role: "status" }, "Your password must be changed before you sign in. Choose a new one."), npW, cpW);
    const userPart = el("div", {}, accW, userW, pwW, resetPart);
    const keyPart = el("div", { hidden: true }, akW, skW);
    const choose = (v) => { mode = v; userPart.hidden = v !== "user"; keyPart.hidden = v !== "key"; };
    const form = el("form", { class: "card signin", novalidate: true },
      el("h1", {}, "Sign in"),
      notice ? el("div", { class: "notice", role: "status" }, notice) : null,
      el("fieldset", {}, el("legend", {}, "Sign in with"),
        el("label", { class: "inline" }, el("input", { type: "radio", name: "mode", value: "user", checked: true, onchange: () => choose("user") }), "IAM user and password"),
        el("label", { class: "inline" }, el("input", { type: "radio", name: "mode", value: "key", onchange: () => choose("key") }), "Access key")),
      userPart, keyPart, err,
      el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", id: "signin-submit" }, "Sign in")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      showError(err, null);
      const body = mode === "user"
        ? { account: acc.value.trim(), userName: user.value.trim(), password: pw.value }
        : { accessKeyId: ak.value.trim(), secretAccessKey: sk.value };
      if (mode === "user" && !resetPart.hidden) {
        if (np.value !== cp.value) { showError(err, { message: "The new passwords do not match." }); cp.focus(); return; }
        body.newPassword = np.value;
      }
      try {
        const me = await post("signin", body);
        pw.value = ""; sk.value = ""; np.value = ""; cp.value = "";
        signedIn(me);
        if (!location.hash || location.hash === "#/signin") location.hash = "#/keys"; else route();
      } catch (e) {
        if (e.type === "PasswordResetRequired") {
          resetPart.hidden = false;
          np.focus();
          return;
        }
        showError(err, e);
      }
    });
    m.append(form);
    (mode === "user" ? acc : ak).focus();
  }

  function signedIn(me) {
    state.me = me;
    state.csrf = me.csrfToken;
    document.getElementById("nav").hidden = false;
    document.getElementById("signout").hidden = false;
    document.getElementById("whoami").textContent = "Signed in as " + me.arn;
  }

  // ---- key list ----

  async function listAll(op, input, member) {
    let out = [], marker;
    for (let i = 0; i < 50; i++) {
      const page = await kms(op, Object.assign({}, input, marker ? { Marker: marker } : {}));
      out = out.concat(page[member] || []);
      if (!page.Truncated) break;
      marker = page.NextMarker;
    }
    return out;
  }

  async function renderKeys() {
    const m = setPage("Customer managed keys");
    const err = errorBox();
    const [filterW, filter] = field("Filter keys", { type: "search", placeholder: "Alias, key ID, status, spec..." });
    filterW.className = "grow";
    const tbody = el("tbody");
    // A principal that may not list keys may still use or manage one
    // whose id or alias it knows.
    const [openW, openInput] = field("Open a key by ID or alias", { type: "text", placeholder: "alias/orders" });
    const open = el("form", { class: "toolbar", hidden: true }, openW, el("button", { type: "submit" }, "Open key"));
    open.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = openInput.value.trim();
      if (v) location.hash = "#/keys/" + encodeURIComponent(v);
    });
    m.append(el("h1", {}, "Customer managed keys"),
      el("div", { class: "toolbar" }, filterW,
        el("button", { type: "button", class: "primary", onclick: () => { location.hash = "#/create"; } }, "Create key")),
      err, open,
      el("div", { class: "tablewrap" }, el("table", { class: "responsive", id: "keys-table" },
        el("thead", {}, el("tr", {}, ["Aliases", "Key ID", "Status", "Key spec", "Key usage", "Creation date"].map((h) => el("th", { scope: "col" }, h)))),
        tbody)));
    let rows = [];
    try {
      const [keys, aliases] = await Promise.all([listAll("ListKeys", {}, "Keys"), listAll("ListAliases", {}, "Aliases").catch(() => [])]);
      const byKey = {};
      for (const a of aliases) if (a.TargetKeyId) (byKey[a.TargetKeyId] = byKey[a.TargetKeyId] || []).push(a.AliasName);
      rows = await Promise.all(keys.map(async (k) => {
        try {
          const d = (await kms("DescribeKey", { KeyId: k.KeyId })).KeyMetadata;
          return { id: k.KeyId, aliases: byKey[k.KeyId] || [], meta: d };
        } catch (e) {
          return { id: k.KeyId, aliases: byKey[k.KeyId] || [], error: e };
        }
      }));
      rows = rows.filter((r) => !r.meta || r.meta.KeyManager !== "AWS");
      rows.sort((a, b) => ((b.meta && b.meta.CreationDate) || 0) - ((a.meta && a.meta.CreationDate) || 0));
    } catch (e) {
      showError(err, e);
      open.hidden = false;
    }
    const draw = () => {
      const q = filter.value.trim().toLowerCase();
      tbody.replaceChildren();
      for (const r of rows) {
        const d = r.meta || {};
        const cells = [r.aliases.join(", "), r.id, d.KeyState || (r.error ? r.error.type : ""), d.KeySpec || "", d.KeyUsage || "", fmtDate(d.CreationDate)];
        if (q && !cells.join(" ").toLowerCase().includes(q)) continue;
        const labels = ["Aliases", "Key ID", "Status", "Key spec", "Key usage", "Creation date"];
        tbody.append(el("tr", {}, cells.map((c, i) => el("td", { "data-label": labels[i] },
          i === 1 ? el("a", { href: "#/keys/" + encodeURIComponent(r.id) }, c)
            : i === 0 && c ? el("a", { href: "#/keys/" + encodeURIComponent(r.id) }, c)
              : i === 2 ? el("span", { class: "status-" + c }, c) : c))));
      }
      if (!tbody.children.length) tbody.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, rows.length ? "No key matches the filter." : "No keys.")));
    };
    filter.addEventListener("input", draw);
    draw();
  }

  // ---- the key policy of the console ----

  const adminActions = ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
    "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"];
  const SID_ROOT = "Enable IAM User Permissions";
  const SID_ADMIN = "Allow access for Key Administrators";
  const SID_USE = "Allow use of the key";
  const SID_GRANT = "Allow attachment of persistent resources";

  function useActions(usage) {
    switch (usage) {
      case "SIGN_VERIFY": return ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"];
      case "GENERATE_VERIFY_MAC": return ["kms:DescribeKey", "kms:GenerateMac", "kms:VerifyMac"];
      case "KEY_AGREEMENT": return ["kms:DescribeKey", "kms:GetPublicKey", "kms:DeriveSharedSecret"];
      case "ENCRYPT_DECRYPT":
      default: return ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"];
    }
  }

  // consolePolicy is the key policy AWS's console writes: the account's
  // root may delegate through IAM; administrators may manage but not use;
  // users may use but not manage.
  function consolePolicy(account, admins, users, usage, symmetric) {
    const st = [{ Sid: SID_ROOT, Effect: "Allow", Principal: { AWS: "arn:aws:iam::" + account + ":root" }, Action: "kms:*", Resource: "*" }];
    if (admins.length) st.push({ Sid: SID_ADMIN, Effect: "Allow", Principal: { AWS: admins }, Action: adminActions, Resource: "*" });
    if (users.length) {
      st.push({ Sid: SID_USE, Effect: "Allow", Principal: { AWS: users }, Action: useActions(usage), Resource: "*" });
      if (symmetric) {
        st.push({ Sid: SID_GRANT, Effect: "Allow", Principal: { AWS: users }, Action: ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
          Resource: "*", Condition: { Bool: { "kms:GrantIsForAWSResource": "true" } } });
      }
    }
    return JSON.stringify({ Id: "key-consolepolicy-3", Version: "2012-10-17", Statement: st }, null, 2);
  }

  // policyLists reads administrators and users back from a console-style
  // policy, or returns null for a policy of another shape.
  function policyLists(text) {
    let doc;
    try { doc = JSON.parse(text); } catch (e) { return null; }
    const sts = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
    const principals = (s) => { const a = s && s.Principal && s.Principal.AWS; return a ? (Array.isArray(a) ? a : [a]) : []; };
    const find = (sid) => sts.find((s) => s && s.Sid === sid);
    if (!find(SID_ROOT) && !find(SID_ADMIN) && !find(SID_USE)) return null;
    return { admins: principals(find(SID_ADMIN)), users: principals(find(SID_USE)) };
  }

  async function principalsOfAccount() {
    const out = [];
    try {
      const u = await iam("ListUsers", {});
      for (const x of u.Users || []) out.push({ name: x.UserName, arn: x.Arn, kind: "User" });
    } catch (e) { /* not allowed to list users: none to offer */ }
    try {
      const r = await iam("ListRoles", {});
      for (const x of r.Roles || []) out.push({ name: x.RoleName, arn: x.Arn, kind: "Role" });
    } catch (e) { /* likewise */ }
    return out;
  }

  // ---- the wizard ----

  const specs = {
    Symmetric: { ENCRYPT_DECRYPT: ["SYMMETRIC_DEFAULT"] },
    Asymmetric: {
      ENCRYPT_DECRYPT: ["RSA_2048", "RSA_3072", "RSA_4096"],
      SIGN_VERIFY: ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"],
      KEY_AGREEMENT: ["ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"],
    },
    HMAC: { GENERATE_VERIFY_MAC: ["HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512"] },
  };

  async function renderWizard() {
    const m = setPage("Create key");
    const w = { type: "Symmetric", usage: "ENCRYPT_DECRYPT", spec: "SYMMETRIC_DEFAULT", alias: "", description: "", tags: [], admins: [], users: [], policy: "", edited: false };
    const stepNames = ["Configure key", "Add labels", "Define key administrative permissions", "Define key usage permissions", "Review"];
    let step = 0, drawnStep = 0;
    const principals = await principalsOfAccount();
    const stepsNav = el("ol", { class: "steps" });
    const body = el("div", { class: "card" });
    const err = errorBox();
    m.append(el("h1", {}, "Create key"), stepsNav, body, err);

    function principalPicker(legend, chosen) {
      const fs = el("fieldset", {}, el("legend", {}, legend));
      if (!principals.length) fs.append(el("p", { class: "muted" }, "No IAM users or roles to choose from."));
      for (const p of principals) {
        const cb = el("input", { type: "checkbox", value: p.arn, checked: chosen.includes(p.arn),
          onchange: (e) => { const i = chosen.indexOf(p.arn); if (e.target.checked && i < 0) chosen.push(p.arn); if (!e.target.checked && i >= 0) chosen.splice(i, 1); w.edited = false; } });
        fs.append(el("label", { class: "inline" }, cb, p.name + " (" + p.kind.toLowerCase() + ")"));
      }
      return fs;
    }

    function draw() {
      stepsNav.replaceChildren(...stepNames.map((n, i) => el("li", { "aria-current": i === step ? "step" : false }, "Step " + (i + 1) + ": " + n)));
      const stepHeading = el("h2", { tabindex: "-1" }, stepNames[step]);
      body.replaceChildren(stepHeading);
      showError(err, null);
      if (step === 0) {
        const types = el("fieldset", {}, el("legend", {}, "Key type"));
        for (const t of ["Symmetric", "Asymmetric", "HMAC"]) {
          types.append(el("label", { class: "inline" }, el("input", { type: "radio", name: "keytype", value: t, checked: w.type === t,
            onchange: () => { w.type = t; w.usage = Object.keys(specs[t])[0]; w.spec = specs[t][w.usage][0]; w.edited = false; draw(); } }), t));
        }
        const usage = el("fieldset", {}, el("legend", {}, "Key usage"));
        for (const u of Object.keys(specs[w.type])) {
          usage.append(el("label", { class: "inline" }, el("input", { type: "radio", name: "keyusage", value: u, checked: w.usage === u,
            onchange: () => { w.usage = u; w.spec = specs[w.type][u][0]; w.edited = false; draw(); } }), u));
        }
        const [specW, spec] = field("Key spec", { tag: "select", onchange: (e) => { w.spec = e.target.value; } });
        for (const s of specs[w.type][w.usage]) spec.append(el("option", { value: s, selected: s === w.spec }, s));
        body.append(types, usage, specW);
      } else if (step === 1) {
        const [aW, a] = field("Alias", { type: "text", value: w.alias, oninput: (e) => { w.alias = e.target.value; } }, "Without the alias/ prefix, e.g. payments");
        const [dW] = field("Description", { tag: "textarea", rows: 2, style: undefined, oninput: (e) => { w.description = e.target.value; } });
        dW.querySelector("textarea").value = w.description;
        dW.querySelector("textarea").style.minHeight = "60px";
        const tagsFs = el("fieldset", {}, el("legend", {}, "Tags"));
        const drawTags = () => {
          tagsFs.replaceChildren(el("legend", {}, "Tags"));
          w.tags.forEach((t, i) => {
            const [kW] = field("Tag key " + (i + 1), { type: "text", value: t.TagKey, oninput: (e) => { t.TagKey = e.target.value; } });
            const [vW] = field("Tag value " + (i + 1), { type: "text", value: t.TagValue, oninput: (e) => { t.TagValue = e.target.value; } });
            tagsFs.append(el("div", { class: "toolbar" }, kW, vW, el("button", { type: "button", onclick: () => { w.tags.splice(i, 1); drawTags(); } }, "Remove tag " + (i + 1))));
          });
          tagsFs.append(el("button", { type: "button", onclick: () => { w.tags.push({ TagKey: "", TagValue: "" }); drawTags(); } }, "Add tag"));
        };
        drawTags();
        body.append(aW, dW, tagsFs);
        a.focus();
      } else if (step === 2) {
        body.append(el("p", {}, "Key administrators can manage this key (enable, disable, change its policy, schedule its deletion) but not use it."),
          principalPicker("Key administrators", w.admins));
      } else if (step === 3) {
        body.append(el("p", {}, "Key users can use this key in cryptographic operations but not manage it."), principalPicker("Key users", w.users));
      } else {
        if (!w.edited) w.policy = consolePolicy(state.me.account, w.admins, w.users, w.usage, w.type === "Symmetric");
        const [pW, p] = field("Key policy", { tag: "textarea", spellcheck: "false", oninput: (e) => { w.policy = e.target.value; w.edited = true; } });
        p.value = w.policy;
        body.append(el("dl", { class: "kv" },
          el("dt", {}, "Key type"), el("dd", {}, w.type), el("dt", {}, "Key usage"), el("dd", {}, w.usage), el("dt", {}, "Key spec"), el("dd", {}, w.spec),
          el("dt", {}, "Alias"), el("dd", {}, w.alias ? "alias/" + w.alias.replace(/^alias\//, "") : "-"),
          el("dt", {}, "Description"), el("dd", {}, w.description || "-"),
          el("dt", {}, "Tags"), el("dd", {}, w.tags.filter((t) => t.TagKey).map((t) => t.TagKey + "=" + t.TagValue).join(", ") || "-"),
          el("dt", {}, "Key administrators"), el("dd", {}, w.admins.join(", ") || "-"),
          el("dt", {}, "Key users"), el("dd", {}, w.users.join(", ") || "-")),
          pW);
      }
      const nav = el("div", { class: "actions" });
      if (step > 0) nav.append(el("button", { type: "button", onclick: () => { step--; draw(); } }, "Previous"));
      if (step < stepNames.length - 1) nav.append(el("button", { type: "button", class: "primary", onclick: () => { step++; draw(); } }, "Next"));
      else nav.append(el("button", { type: "button", class: "primary", onclick: finish }, "Finish"));
      nav.append(el("button", { type: "button", onclick: () => { location.hash = "#/keys"; } }, "Cancel"));
      body.append(nav);
      // Moving between steps takes the focus to the new step's heading,
      // so that keyboard and screen reader users start at its top.
      if (step !== drawnStep && step !== 1) stepHeading.focus();
      drawnStep = step;
    }

    async function finish(ev) {
      const btn = ev.target;
      showError(err, null);
      // The alias is checked before the key is made, so that a bad one
      // does not leave a key without it.
      const alias = w.alias.trim().replace(/^alias\//, "");
      if (alias && (!/^[a-zA-Z0-9/_-]{1,250}$/.test(alias) || alias.startsWith("aws/"))) {
        showError(err, { type: "InvalidAliasNameException", message: "The alias may hold only letters, digits, /, _ and -, and may not begin with aws/. Go back to step 2 to change it." });
        return;
      }
      btn.disabled = true;
      try {
        const input = { KeySpec: w.spec, KeyUsage: w.usage, Policy: w.policy };
        if (w.description) input.Description = w.description;
        const tags = w.tags.filter((t) => t.TagKey);
        if (tags.length) input.Tags = tags;
        const out = await kms("CreateKey", input);
        const id = out.KeyMetadata.KeyId;
        if (alias) {
          try {
            await kms("CreateAlias", { AliasName: "alias/" + alias, TargetKeyId: id });
          } catch (e) {
            sessionStorage.setItem("notice", "The key was created, but its alias was not: " + e.type + ": " + e.message);
          }
        }
        location.hash = "#/keys/" + encodeURIComponent(id);
      } catch (e) {
        showError(err, e);
        btn.disabled = false;
      }
    }
    draw();
  }

  // ---- the key's page ----

  async function renderKey(keyId, tab) {
    const m = setPage("Key " + keyId);
    const err = errorBox();
    const notice = sessionStorage.getItem("notice");
    sessionStorage.removeItem("notice");
    let meta;
    try {
      meta = (await kms("DescribeKey", { KeyId: keyId })).KeyMetadata;
    } catch (e) {
      m.append(el("h1", {}, keyId), err);
      showError(err, e);
      return;
    }
    let aliases = [];
    try { aliases = (await kms("ListAliases", { KeyId: meta.KeyId })).Aliases || []; } catch (e) { /* shown on the tab */ }
    const title = aliases.length ? aliases[0].AliasName : meta.KeyId;
    const reload = (t) => renderKey(keyId, t || current);
    const act = async (op, input, box) => {
      showError(box, null);
      try { await kms(op, Object.assign({ KeyId: meta.KeyId }, input || {})); reload(); } catch (e) { showError(box, e); }
    };
    const actions = el("div", { class: "actions", role: "group", "aria-label": "Key actions" });
    if (meta.KeyState === "Enabled") actions.append(el("button", { type: "button", onclick: () => act("DisableKey", {}, err) }, "Disable"));
    if (meta.KeyState === "Disabled") actions.append(el("button", { type: "button", onclick: () => act("EnableKey", {}, err) }, "Enable"));
    if (meta.KeyState === "PendingDeletion") actions.append(el("button", { type: "button", onclick: () => act("CancelKeyDeletion", {}, err) }, "Cancel key deletion"));
    else actions.append(el("button", { type: "button", class: "danger", onclick: () => scheduleDialog() }, "Schedule key deletion"));
    const dialogSlot = el("div");
    m.append(el("p", {}, el("a", { href: "#/keys" }, "Customer managed keys"), " / ", meta.KeyId),
      el("h1", {}, title), notice ? el("div", { class: "notice", role: "status" }, notice) : "",
      el("p", {}, "Status: ", el("span", { class: "status-" + meta.KeyState, id: "key-state" }, meta.KeyState),
        meta.DeletionDate ? " (deletion on " + fmtDate(meta.DeletionDate) + ")" : ""),
      actions, dialogSlot, err);

    function scheduleDialog() {
      const box = errorBox();
      const [dW, days] = field("Waiting period (in days)", { type: "number", min: 7, max: 30, value: 30 }, "Between 7 and 30 days.");
      const [cW, confirm] = field("To confirm, type delete", { type: "text", autocomplete: "off" });
      const go = el("button", { type: "button", class: "danger", disabled: true }, "Schedule deletion");
      confirm.addEventListener("input", () => { go.disabled = confirm.value.trim() !== "delete"; });
      go.addEventListener("click", async () => {
        const n = Number(days.value);
        if (!Number.isInteger(n) || n < 7 || n > 30) { showError(box, { message: "The waiting period must be a whole number of days from 7 to 30." }); return; }
        await act("ScheduleKeyDeletion", { PendingWindowInDays: n }, box);
      });
      dialogSlot.replaceChildren(el("section", { class: "card", "aria-label": "Schedule key deletion" },
        el("h2", {}, "Schedule key deletion"),
        el("p", {}, "After the waiting period the key and all its material are deleted, and data encrypted under it can no longer be decrypted."),
        dW, cW, box, el("div", { class: "actions" }, go, el("button", { type: "button", onclick: () => dialogSlot.replaceChildren() }, "Cancel"))));
      days.focus();
    }

    const tabs = ["General configuration", "Key policy", "Key rotation", "Aliases", "Tags"];
    let current = tab || tabs[0];
    const tablist = el("div", { role: "tablist", "aria-label": "Key details" });
    const panel = el("div", { role: "tabpanel", id: "key-panel", tabindex: "0" });
    const buttons = tabs.map((t, i) => el("button", { type: "button", role: "tab", id: "tab-" + i, "aria-controls": "key-panel",
      onclick: () => select(t), onkeydown: (e) => {
        const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
        if (d) { const n = (i + d + tabs.length) % tabs.length; select(tabs[n]); buttons[n].focus(); }
      } }, t));
    tablist.append(...buttons);
    m.append(tablist, panel);

    function select(t) {
      current = t;
      buttons.forEach((b, i) => { b.setAttribute("aria-selected", String(tabs[i] === t)); b.tabIndex = tabs[i] === t ? 0 : -1; });
      panel.setAttribute("aria-labelledby", "tab-" + tabs.indexOf(t));
      panel.replaceChildren();
      ({ "General configuration": general, "Key policy": policyTab, "Key rotation": rotationTab, Aliases: aliasesTab, Tags: tagsTab })[t]();
    }

    function general() {
      const rows = [["ARN", meta.Arn], ["Key ID", meta.KeyId], ["Status", meta.KeyState], ["Key spec", meta.KeySpec], ["Key usage", meta.KeyUsage],
        ["Origin", meta.Origin], ["Creation date", fmtDate(meta.CreationDate)], ["Description", meta.Description || "-"],
        ["Multi-Region", meta.MultiRegion ? "Yes" : "No"]];
      if (meta.DeletionDate) rows.push(["Deletion date", fmtDate(meta.DeletionDate)]);
      panel.append(el("dl", { class: "kv" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "")])));
      if (meta.KeyUsage === "ENCRYPT_DECRYPT") panel.append(encryptForm());
    }

    // encryptForm tries the key: Encrypt as the signed-in principal, which
    // its key policy and identity policies allow or refuse.
    function encryptForm() {
      const box = errorBox();
      box.id = "encrypt-error";
      const result = el("pre", { id: "encrypt-result", hidden: true });
      const [ptW, pt] = field("Plaintext", { tag: "textarea", spellcheck: "false" }, "At most 4096 bytes.");
      pt.style.minHeight = "60px";
      return el("section", { "aria-label": "Encrypt" }, el("h2", {}, "Try the key"), ptW, el("div", { class: "actions" },
        el("button", { type: "button", onclick: async () => {
          showError(box, null);
          result.hidden = true;
          const bytes = new TextEncoder().encode(pt.value);
          let bin = "";
          for (const b of bytes) bin += String.fromCharCode(b);
          try {
            const out = await kms("Encrypt", { KeyId: meta.KeyId, Plaintext: btoa(bin) });
            result.textContent = "Ciphertext (base64): " + out.CiphertextBlob;
            result.hidden = false;
          } catch (e) { showError(box, e); }
        } }, "Encrypt")), box, result);
    }

    async function policyTab() {
      const box = errorBox();
      panel.append(box);
      let text;
      try { text = (await kms("GetKeyPolicy", { KeyId: meta.KeyId, PolicyName: "default" })).Policy; } catch (e) { showError(box, e); return; }
      const view = (asJSON) => {
        panel.replaceChildren();
        const lists = policyLists(text);
        if (!asJSON) {
          if (lists) {
            const list = (title, arns) => [el("h2", {}, title), arns.length ? el("ul", { "aria-label": title }, arns.map((a) => el("li", {}, a))) : el("p", { class: "muted" }, "None.")];
            panel.append(...list("Key administrators", lists.admins), ...list("Key users", lists.users));
          } else {
            panel.append(el("p", { class: "muted" }, "This policy is not in the console's form; it is shown as JSON."), el("pre", {}, text));
          }
          panel.append(el("div", { class: "actions" },
            el("button", { type: "button", onclick: () => view(true) }, "Edit policy as JSON")));
          return;
        }
        const editErr = errorBox();
        editErr.id = "policy-error";
        const [pW, p] = field("Key policy JSON", { tag: "textarea", spellcheck: "false" });
        p.value = prettyJSON(text);
        panel.append(pW, editErr, el("div", { class: "actions" },
          el("button", { type: "button", class: "primary", onclick: async () => {
            showError(editErr, null);
            try {
              await kms("PutKeyPolicy", { KeyId: meta.KeyId, PolicyName: "default", Policy: p.value });
              text = p.value;
              view(false);
            } catch (e) { showError(editErr, e); }
          } }, "Save changes"),
          el("button", { type: "button", onclick: () => view(false) }, "Cancel")));
        p.focus();
      };
      view(false);
    }

    async function rotationTab() {
      const box = errorBox();
      panel.append(box);
      if (meta.KeySpec !== "SYMMETRIC_DEFAULT") {
        panel.append(el("p", { class: "muted" }, "Automatic rotation is for symmetric encryption keys."));
      }
      let st = {};
      try { st = await kms("GetKeyRotationStatus", { KeyId: meta.KeyId }); } catch (e) { showError(box, e); }
      const on = el("input", { type: "checkbox", id: "rot-on", checked: !!st.KeyRotationEnabled });
      const [perW, period] = field("Rotation period (in days)", { type: "number", min: 90, max: 2560, value: st.RotationPeriodInDays || 365 }, "Between 90 and 2560 days.");
      panel.append(el("label", { class: "inline", for: "rot-on" }, on, "Automatic key rotation"), perW,
        st.NextRotationDate ? el("p", {}, "Next rotation: " + fmtDate(st.NextRotationDate)) : "",
        el("div", { class: "actions" },
          el("button", { type: "button", class: "primary", onclick: async () => {
            showError(box, null);
            try {
              if (on.checked) await kms("EnableKeyRotation", { KeyId: meta.KeyId, RotationPeriodInDays: Number(period.value) });
              else await kms("DisableKeyRotation", { KeyId: meta.KeyId });
              reload("Key rotation");
            } catch (e) { showError(box, e); }
          } }, "Save rotation settings"),
          el("button", { type: "button", onclick: () => act("RotateKeyOnDemand", {}, box).then(() => {}) }, "Rotate now")));
      const hist = el("tbody");
      panel.append(el("h2", {}, "Rotation history"), el("div", { class: "tablewrap" }, el("table", {},
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Key material ID"), el("th", { scope: "col" }, "Date"), el("th", { scope: "col" }, "Type"))), hist)));
      try {
        const rots = (await kms("ListKeyRotations", { KeyId: meta.KeyId })).Rotations || [];
        for (const r of rots.reverse()) hist.append(el("tr", {}, el("td", {}, r.KeyMaterialId || "-"), el("td", {}, fmtDate(r.RotationDate)), el("td", {}, r.RotationType || "")));
        if (!rots.length) hist.append(el("tr", {}, el("td", { colspan: 3, class: "muted" }, "The key has not been rotated.")));
      } catch (e) { showError(box, e); }
    }

    async function aliasesTab() {
      const box = errorBox();
      const list = el("ul");
      panel.append(list);
      for (const a of aliases) {
        list.append(el("li", {}, a.AliasName, " ", el("button", { type: "button", onclick: async () => {
          showError(box, null);
          try { await kms("DeleteAlias", { AliasName: a.AliasName }); reload("Aliases"); } catch (e) { showError(box, e); }
        } }, "Delete " + a.AliasName)));
      }
      if (!aliases.length) list.append(el("li", { class: "muted" }, "No aliases."));
      const [nW, name] = field("New alias", { type: "text" }, "Without the alias/ prefix.");
      panel.append(nW, box, el("div", { class: "actions" }, el("button", { type: "button", onclick: async () => {
        showError(box, null);
        try { await kms("CreateAlias", { AliasName: "alias/" + name.value.trim().replace(/^alias\//, ""), TargetKeyId: meta.KeyId }); reload("Aliases"); } catch (e) { showError(box, e); }
      } }, "Create alias")));
    }

    async function tagsTab() {
      const box = errorBox();
      const tbody = el("tbody");
      panel.append(el("div", { class: "tablewrap" }, el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Tag key"), el("th", { scope: "col" }, "Tag value"), el("th", { scope: "col" }, ""))), tbody)), box);
      try {
        const tags = (await kms("ListResourceTags", { KeyId: meta.KeyId })).Tags || [];
        for (const t of tags) {
          tbody.append(el("tr", {}, el("td", {}, t.TagKey), el("td", {}, t.TagValue), el("td", {}, el("button", { type: "button", onclick: async () => {
            try { await kms("UntagResource", { KeyId: meta.KeyId, TagKeys: [t.TagKey] }); reload("Tags"); } catch (e) { showError(box, e); }
          } }, "Remove " + t.TagKey))));
        }
        if (!tags.length) tbody.append(el("tr", {}, el("td", { colspan: 3, class: "muted" }, "No tags.")));
      } catch (e) { showError(box, e); }
      const [kW, k] = field("Tag key", { type: "text" });
      const [vW, v] = field("Tag value", { type: "text" });
      panel.append(el("div", { class: "toolbar" }, kW, vW, el("button", { type: "button", onclick: async () => {
        showError(box, null);
        try { await kms("TagResource", { KeyId: meta.KeyId, Tags: [{ TagKey: k.value, TagValue: v.value }] }); reload("Tags"); } catch (e) { showError(box, e); }
      } }, "Add tag")));
    }

    select(current);
  }

  function prettyJSON(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  // ---- audit ----

  async function renderAudit() {
    const m = setPage("Audit");
    const err = errorBox();
    const banner = el("div", { id: "chain-banner", role: "status" }, "Checking the chain...");
    const f = {};
    const filters = el("form", { class: "card filters", role: "search", "aria-label": "Filter events" });
    for (const [key, label, type] of [["name", "Event name", "text"], ["user", "User", "text"], ["key", "Key", "text"], ["from", "From", "datetime-local"], ["to", "To", "datetime-local"]]) {
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
          el("td", { "data-label": "Event name" }, ev.eventName || ""),
          el("td", { "data-label": "User" }, who(ev)),
          el("td", { "data-label": "Key" }, keysOf(ev)),
          el("td", { "data-label": "Error" }, ev.errorCode || ""),
          el("td", {}, btn, pre)));
      }
      count.textContent = (n > 500 ? "Showing the newest 500 of the matching events." : n + " matching events, newest first.");
    }
    draw();
  }

  // ---- IAM ----

  async function renderIAM() {
    const m = setPage("IAM");
    const err = errorBox();
    m.append(el("h1", {}, "IAM"), err);
    const [nW, newName] = field("User name", { type: "text" });
    const createBox = errorBox();
    m.append(el("section", { class: "card", "aria-label": "Create user" }, el("h2", {}, "Create user"), nW, createBox,
      el("div", { class: "actions" }, el("button", { type: "button", class: "primary", onclick: async () => {
        showError(createBox, null);
        try { await iam("CreateUser", { UserName: newName.value.trim() }); renderIAM(); } catch (e) { showError(createBox, e); }
      } }, "Create user"))));
    let users = [], roles = [];
    try { users = (await iam("ListUsers", {})).Users || []; } catch (e) { showError(err, e); }
    try { roles = (await iam("ListRoles", {})).Roles || []; } catch (e) { /* shown as none */ }
    const usersSec = el("section", { class: "card" }, el("h2", {}, "Users"));
    if (!users.length) usersSec.append(el("p", { class: "muted" }, "No users."));
    for (const u of users) usersSec.append(userCard(u));
    const rolesSec = el("section", { class: "card" }, el("h2", {}, "Roles"));
    if (!roles.length) rolesSec.append(el("p", { class: "muted" }, "No roles."));
    for (const r of roles) rolesSec.append(el("details", {}, el("summary", {}, r.RoleName), el("p", {}, r.Arn), policiesOf("Role", r.RoleName)));
    m.append(usersSec, rolesSec);
  }

  function userCard(u) {
    const box = errorBox();
    const out = el("div");
    const [pwW, pw] = field("New password for " + u.UserName, { type: "password", autocomplete: "new-password" });
    const keys = el("ul");
    const load = async () => {
      keys.replaceChildren();
      try {
        const ks = (await iam("ListAccessKeys", { UserName: u.UserName })).AccessKeyMetadata || [];
        for (const k of ks) keys.append(el("li", {}, k.AccessKeyId + " (" + k.Status + ") ", el("button", { type: "button", onclick: async () => {
          try { await iam("DeleteAccessKey", { UserName: u.UserName, AccessKeyId: k.AccessKeyId }); load(); } catch (e) { showError(box, e); }
        } }, "Delete " + k.AccessKeyId)));
        if (!ks.length) keys.append(el("li", { class: "muted" }, "No access keys."));
      } catch (e) { showError(box, e); }
    };
    load();
    return el("details", {}, el("summary", {}, u.UserName),
      el("p", {}, u.Arn),
      pwW, el("div", { class: "actions" }, el("button", { type: "button", onclick: async () => {
        showError(box, null);
        try {
          try { await iam("UpdateLoginProfile", { UserName: u.UserName, Password: pw.value }); } catch (e) {
            if (e.type !== "NoSuchEntity") throw e;
            await iam("CreateLoginProfile", { UserName: u.UserName, Password: pw.value });
          }
          pw.value = "";
          out.replaceChildren(el("div", { class: "notice", role: "status" }, "Password set for " + u.UserName + "."));
        } catch (e) { showError(box, e); }
      } }, "Set password"),
      el("button", { type: "button", onclick: async () => {
        showError(box, null);
        try {
          const k = (await iam("CreateAccessKey", { UserName: u.UserName })).AccessKey;
          out.replaceChildren(el("div", { class: "secret", role: "status" }, "Access key " + k.AccessKeyId + ", secret " + k.SecretAccessKey + " - shown once; copy it now."));
          load();
        } catch (e) { showError(box, e); }
      } }, "Create access key")),
      box, out, el("h3", {}, "Access keys"), keys, policiesOf("User", u.UserName));
  }

  function policiesOf(kind, name) {
    const wrap = el("div", {}, el("h3", {}, "Inline policies"));
    const box = errorBox();
    const list = el("ul");
    const param = kind + "Name";
    const load = async () => {
      list.replaceChildren();
      try {
        const names = (await iam("List" + kind + "Policies", { [param]: name })).PolicyNames || [];
        for (const n of names) {
          const pre = el("pre", { hidden: true });
          list.append(el("li", {}, n, " ",
            el("button", { type: "button", onclick: async () => {
              try { const p = await iam("Get" + kind + "Policy", { [param]: name, PolicyName: n }); pre.textContent = prettyJSON(decodeURIComponent(p.PolicyDocument)); pre.hidden = !pre.hidden; } catch (e) { showError(box, e); }
            } }, "Show " + n),
            el("button", { type: "button", onclick: async () => {
              try { await iam("Delete" + kind + "Policy", { [param]: name, PolicyName: n }); load(); } catch (e) { showError(box, e); }
            } }, "Delete " + n), pre));
        }
        if (!names.length) list.append(el("li", { class: "muted" }, "No inline policies."));
      } catch (e) { showError(box, e); }
    };
    load();
    const [pnW, pn] = field("Policy name (" + name + ")", { type: "text" });
    const [pdW, pd] = field("Policy document (" + name + ")", { tag: "textarea", spellcheck: "false" });
    pd.style.minHeight = "120px";
    wrap.append(list, pnW, pdW, box, el("div", { class: "actions" }, el("button", { type: "button", onclick: async () => {
      showError(box, null);
      try { await iam("Put" + kind + "Policy", { [param]: name, PolicyName: pn.value.trim(), PolicyDocument: pd.value }); pn.value = ""; pd.value = ""; load(); } catch (e) { showError(box, e); }
    } }, "Put policy")));
    return wrap;
  }

  // ---- routing ----

  async function route() {
    if (!state.me) { renderSignIn(); return; }
    const h = location.hash || "#/keys";
    try {
      if (h.startsWith("#/keys/")) await renderKey(decodeURIComponent(h.slice(7)));
      else if (h === "#/create") await renderWizard();
      else if (h === "#/audit") await renderAudit();
      else if (h === "#/iam") await renderIAM();
      else await renderKeys();
    } catch (e) {
      if (state.me) { const b = errorBox(); main().append(b); showError(b, e); }
    }
    main().focus();
  }

  window.addEventListener("hashchange", route);
  document.addEventListener("DOMContentLoaded", async () => {
    document.getElementById("signout").addEventListener("click", async () => {
      try { await post("signout", {}); } catch (e) { /* signed out anyway */ }
      state.me = null; state.csrf = "";
      location.hash = "";
      renderSignIn("You are signed out.");
    });
    try {
      signedIn(await post("session", {}));
    } catch (e) {
      state.me = null;
    }
    route();
  });
})();
