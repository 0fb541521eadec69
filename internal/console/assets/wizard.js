// wizard.js: the Create key wizard and the console-style key policy.
"use strict";

(function (K) {
  const { state, main, el, field, errorBox, showError, post, kms, iam, trail, fmtDate, setPage, prettyJSON, iamAll } = K;

  // ---- the key policy of the console ----

  const adminActions = ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
    "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"];
  const SID_ROOT = "Enable IAM User Permissions";
  const SID_ADMIN = "Allow access for Key Administrators";
  const SID_USE = "Allow use of the key";
  const SID_GRANT = "Allow attachment of persistent resources";
  const grantActions = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"];

  function useActions(usage) {
    switch (usage) {
      case "SIGN_VERIFY": return ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"];
      case "GENERATE_VERIFY_MAC": return ["kms:DescribeKey", "kms:GenerateMac", "kms:VerifyMac"];
      case "KEY_AGREEMENT": return ["kms:DescribeKey", "kms:GetPublicKey", "kms:DeriveSharedSecret"];
      case "ENCAPSULATE_DECAPSULATE": return ["kms:DescribeKey", "kms:GetPublicKey", "kms:Encapsulate", "kms:Decapsulate"];
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
        st.push({ Sid: SID_GRANT, Effect: "Allow", Principal: { AWS: users }, Action: grantActions,
          Resource: "*", Condition: { Bool: { "kms:GrantIsForAWSResource": "true" } } });
      }
    }
    return JSON.stringify({ Id: "key-consolepolicy-3", Version: "2012-10-17", Statement: st }, null, 2);
  }

  // policyLists reads administrators and users back from a policy exactly
  // of the console's form (consolePolicy) for a key of account with that
  // usage, or returns null for any other policy. The lists show no more
  // than who the statements name: a policy that grants anything else (a
  // statement of another Sid, a Deny, a Principal of "*", an account or
  // another account's root, other actions, a condition) must be read as
  // JSON.
  function policyLists(text, account, usage) {
    let doc;
    try { doc = JSON.parse(text); } catch (e) { return null; }
    const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
    const only = (o, names) => isObject(o) && Object.keys(o).every((k) => names.includes(k));
    // strings is a string or a non-empty array of strings as an array, else null.
    const strings = (v) => typeof v === "string" ? [v] : Array.isArray(v) && v.length && v.every((x) => typeof x === "string") ? v : null;
    const sameSet = (a, b) => a !== null && new Set(a).size === new Set(b).size && a.every((x) => b.includes(x));
    // A user's or role's ARN, or the unique id that replaces it once the
    // user or role is deleted; never an account's root, which names every
    // principal of its account (the root statement's is checked below).
    const principal = /^(arn:aws:iam::[0-9]{12}:(user|role)\/[^*?\s]+|(AIDA|AROA)[A-Z0-9]+)$/;
    if (!only(doc, ["Version", "Id", "Statement"])) return null;
    const bySid = {};
    for (const s of Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement]) {
      if (!only(s, ["Sid", "Effect", "Principal", "Action", "Resource", "Condition"])) return null;
      if (![SID_ROOT, SID_ADMIN, SID_USE, SID_GRANT].includes(s.Sid) || bySid[s.Sid]) return null;
      if (s.Effect !== "Allow" || !only(s.Principal, ["AWS"]) || !sameSet(strings(s.Resource), ["*"])) return null;
      const who = strings(s.Principal.AWS);
      if (!who || !(s.Sid === SID_ROOT || who.every((a) => principal.test(a)))) return null;
      if (s.Condition !== undefined && s.Sid !== SID_GRANT) return null;
      bySid[s.Sid] = { who: [...new Set(who)], actions: strings(s.Action), condition: s.Condition };
    }
    const root = bySid[SID_ROOT], admin = bySid[SID_ADMIN], use = bySid[SID_USE], grant = bySid[SID_GRANT];
    if (!root || !sameSet(root.who, ["arn:aws:iam::" + account + ":root"]) || !sameSet(root.actions, ["kms:*"])) return null;
    if (admin && !sameSet(admin.actions, adminActions)) return null;
    if (use && !sameSet(use.actions, useActions(usage))) return null;
    if (grant) {
      // Only for the key users, and only for grants to AWS services.
      const c = grant.condition;
      const forAWS = only(c, ["Bool"]) && only(c.Bool, ["kms:GrantIsForAWSResource"]) &&
        (c.Bool["kms:GrantIsForAWSResource"] === true || sameSet(strings(c.Bool["kms:GrantIsForAWSResource"]), ["true"]));
      if (!use || !sameSet(grant.who, use.who) || !sameSet(grant.actions, grantActions) || !forAWS) return null;
    }
    return { admins: admin ? admin.who : [], users: use ? use.who : [] };
  }

  async function principalsOfAccount() {
    const out = [];
    try {
      for (const x of await iamAll("ListUsers", {}, "Users")) out.push({ name: x.UserName, arn: x.Arn, kind: "User" });
    } catch (e) { /* not allowed to list users: none to offer */ }
    try {
      for (const x of await iamAll("ListRoles", {}, "Roles")) out.push({ name: x.RoleName, arn: x.Arn, kind: "Role" });
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
      ENCAPSULATE_DECAPSULATE: ["ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"],
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

  Object.assign(K, { renderWizard, policyLists });
})(window.KMS);
