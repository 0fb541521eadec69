// iam.js: the IAM page.
"use strict";

(function (K) {
  const { state, main, el, field, errorBox, showError, post, kms, iam, trail, fmtDate, setPage, prettyJSON, iamAll } = K;

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
    try { users = await iamAll("ListUsers", {}, "Users"); } catch (e) { showError(err, e); }
    try { roles = await iamAll("ListRoles", {}, "Roles"); } catch (e) { /* shown as none */ }
    const usersSec = el("section", { class: "card" }, el("h2", {}, "Users"));
    if (!users.length) usersSec.append(el("p", { class: "muted" }, "No users."));
    for (const u of users) usersSec.append(userCard(u));
    const rolesSec = el("section", { class: "card" }, el("h2", {}, "Roles"));
    if (!roles.length) rolesSec.append(el("p", { class: "muted" }, "No roles."));
    for (const r of roles) {
      const pols = policiesOf("Role", r.RoleName);
      rolesSec.append(onFirstOpen(el("details", {}, el("summary", {}, r.RoleName), el("p", {}, r.Arn), pols), pols.load));
    }
    m.append(usersSec, rolesSec);
  }

  // onFirstOpen calls load when details is first opened: a user's or
  // role's access keys and policies are read when looked at, not one
  // call each (each in the audit trail) for every user of the account
  // whenever the page is shown.
  function onFirstOpen(details, load) {
    let loaded = false;
    details.addEventListener("toggle", () => {
      if (details.open && !loaded) { loaded = true; load(); }
    });
    return details;
  }

  function userCard(u) {
    const box = errorBox();
    const out = el("div");
    const [pwW, pw] = field("New password for " + u.UserName, { type: "password", autocomplete: "new-password" });
    const keys = el("ul");
    const load = async () => {
      keys.replaceChildren();
      try {
        const ks = await iamAll("ListAccessKeys", { UserName: u.UserName }, "AccessKeyMetadata");
        for (const k of ks) {
          const next = k.Status === "Active" ? "Inactive" : "Active";
          keys.append(el("li", {}, k.AccessKeyId + " (" + k.Status + ") ",
            el("button", { type: "button", onclick: async () => {
              try { await iam("UpdateAccessKey", { UserName: u.UserName, AccessKeyId: k.AccessKeyId, Status: next }); load(); } catch (e) { showError(box, e); }
            } }, (next === "Active" ? "Activate " : "Deactivate ") + k.AccessKeyId),
            el("button", { type: "button", onclick: async () => {
              try { await iam("DeleteAccessKey", { UserName: u.UserName, AccessKeyId: k.AccessKeyId }); load(); } catch (e) { showError(box, e); }
            } }, "Delete " + k.AccessKeyId)));
        }
        if (!ks.length) keys.append(el("li", { class: "muted" }, "No access keys."));
      } catch (e) { showError(box, e); }
    };
    const pols = policiesOf("User", u.UserName);
    return onFirstOpen(el("details", {}, el("summary", {}, u.UserName),
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
      box, out, el("h3", {}, "Access keys"), keys, pols), () => { load(); pols.load(); });
  }

  function policiesOf(kind, name) {
    const wrap = el("div", {}, el("h3", {}, "Inline policies"));
    const box = errorBox();
    const list = el("ul");
    const param = kind + "Name";
    const load = async () => {
      list.replaceChildren();
      try {
        const names = await iamAll("List" + kind + "Policies", { [param]: name }, "PolicyNames");
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
    wrap.load = load;
    const [pnW, pn] = field("Policy name (" + name + ")", { type: "text" });
    const [pdW, pd] = field("Policy document (" + name + ")", { tag: "textarea", spellcheck: "false" });
    pd.style.minHeight = "120px";
    wrap.append(list, pnW, pdW, box, el("div", { class: "actions" }, el("button", { type: "button", onclick: async () => {
      showError(box, null);
      try { await iam("Put" + kind + "Policy", { [param]: name, PolicyName: pn.value.trim(), PolicyDocument: pd.value }); pn.value = ""; pd.value = ""; load(); } catch (e) { showError(box, e); }
    } }, "Put policy")));
    return wrap;
  }

  Object.assign(K, { renderIAM });
})(window.KMS);
