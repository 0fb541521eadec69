// keys.js: the key list and the key's page.
"use strict";

(function (K) {
  const { state, main, el, field, errorBox, showError, post, kms, iam, trail, fmtDate, setPage, prettyJSON } = K;

  // ---- key list ----

  const keysPerPage = 100;

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
    // One page of keys at a time (ListKeys' order), each described and
    // its aliases listed: a view costs the same with 100 keys or 100,000.
    const pager = el("div", { class: "toolbar" });
    m.append(pager);
    const markers = [undefined]; // the marker of each page seen; the last is the next page's
    let rows = [];
    let page = 0;
    async function load(p) {
      showError(err, null);
      let keys = [], next;
      try {
        const out = await kms("ListKeys", Object.assign({ Limit: keysPerPage }, markers[p] ? { Marker: markers[p] } : {}));
        keys = out.Keys || [];
        next = out.Truncated ? out.NextMarker : undefined;
      } catch (e) {
        showError(err, e);
        open.hidden = false;
      }
      page = p;
      markers.length = p + 1;
      if (next) markers.push(next);
      // Describe the keys a few at a time, not all at once.
      rows = new Array(keys.length);
      let i = 0;
      const worker = async () => {
        while (i < keys.length) {
          const j = i++, k = keys[j];
          let aliases = [];
          try { aliases = ((await kms("ListAliases", { KeyId: k.KeyId })).Aliases || []).map((a) => a.AliasName); } catch (e) { /* shown without */ }
          try {
            const d = (await kms("DescribeKey", { KeyId: k.KeyId })).KeyMetadata;
            rows[j] = { id: k.KeyId, aliases, meta: d };
          } catch (e) {
            rows[j] = { id: k.KeyId, aliases, error: e };
          }
        }
      };
      await Promise.all(Array.from({ length: 6 }, worker));
      rows = rows.filter((r) => !r.meta || r.meta.KeyManager !== "AWS");
      rows.sort((a, b) => ((b.meta && b.meta.CreationDate) || 0) - ((a.meta && a.meta.CreationDate) || 0));
      pager.replaceChildren();
      if (page > 0 || markers.length > page + 1) {
        pager.append(
          el("button", { type: "button", disabled: page === 0, onclick: () => load(page - 1) }, "Previous page"),
          el("span", { class: "muted" }, "Page " + (page + 1)),
          el("button", { type: "button", disabled: markers.length <= page + 1, onclick: () => load(page + 1) }, "Next page"));
      }
      draw();
    }
    function draw() {
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
    }
    filter.addEventListener("input", draw);
    await load(0);
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

    const asymmetric = meta.KeySpec !== "SYMMETRIC_DEFAULT" && !String(meta.KeySpec).startsWith("HMAC_");
    const tabs = ["General configuration", "Key policy"].concat(asymmetric ? ["Public key"] : [], ["Key rotation", "Aliases", "Tags"]);
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
      ({ "General configuration": general, "Key policy": policyTab, "Public key": publicKeyTab, "Key rotation": rotationTab, Aliases: aliasesTab, Tags: tagsTab })[t]();
    }

    function general() {
      const rows = [["ARN", meta.Arn], ["Key ID", meta.KeyId], ["Status", meta.KeyState], ["Key spec", meta.KeySpec], ["Key usage", meta.KeyUsage],
        ["Origin", meta.Origin], ["Creation date", fmtDate(meta.CreationDate)], ["Description", meta.Description || "-"],
        ["Multi-Region", meta.MultiRegion ? "Yes" : "No"]];
      if (meta.DeletionDate) rows.push(["Deletion date", fmtDate(meta.DeletionDate)]);
      panel.append(el("dl", { class: "kv" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "")])));
      const box = errorBox();
      const [dW, desc] = field("New description", { type: "text", value: meta.Description || "" });
      panel.append(el("div", { class: "toolbar" }, dW, el("button", { type: "button", onclick: async () => {
        showError(box, null);
        try { await kms("UpdateKeyDescription", { KeyId: meta.KeyId, Description: desc.value }); reload("General configuration"); } catch (e) { showError(box, e); }
      } }, "Update description")), box);
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
        const lists = K.policyLists(text, meta.AWSAccountId, meta.KeyUsage);
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
        p.value = text; // as GetKeyPolicy returns it, in AWS's layout
        panel.append(pW, editErr, el("div", { class: "actions" },
          el("button", { type: "button", class: "primary", onclick: async () => {
            showError(editErr, null);
            try {
              await kms("PutKeyPolicy", { KeyId: meta.KeyId, PolicyName: "default", Policy: p.value });
              // Shown as the server now returns it; a policy that no longer
              // lets the caller read it is shown as saved.
              try { text = (await kms("GetKeyPolicy", { KeyId: meta.KeyId, PolicyName: "default" })).Policy; } catch (e) { text = p.value; }
              view(false);
            } catch (e) { showError(editErr, e); }
          } }, "Save changes"),
          el("button", { type: "button", onclick: () => view(false) }, "Cancel")));
        p.focus();
      };
      view(false);
    }

    // publicKeyTab shows an asymmetric key's public key as PEM, as
    // GetPublicKey gives it to the signed-in principal, with the
    // algorithms it may be used with.
    async function publicKeyTab() {
      const box = errorBox();
      panel.append(box);
      let out;
      try { out = await kms("GetPublicKey", { KeyId: meta.KeyId }); } catch (e) { showError(box, e); return; }
      const algorithms = [["Encryption algorithms", out.EncryptionAlgorithms], ["Signing algorithms", out.SigningAlgorithms],
        ["Key agreement algorithms", out.KeyAgreementAlgorithms], ["Encapsulation algorithms", out.EncapsulationAlgorithms]]
        .filter(([, v]) => v && v.length).map(([k, v]) => [k, v.join(", ")]);
      const rows = [["Key spec", out.KeySpec], ["Key usage", out.KeyUsage]].concat(algorithms);
      const lines = (out.PublicKey || "").match(/.{1,64}/g) || [];
      const pem = ["-----BEGIN PUBLIC KEY-----"].concat(lines, ["-----END PUBLIC KEY-----"]).join("\n");
      panel.append(el("dl", { class: "kv" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "")])),
        el("h2", {}, "Public key (PEM)"), el("pre", { id: "public-key-pem" }, pem));
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

  Object.assign(K, { renderKeys, renderKey });
})(window.KMS);
