// signin.js: the sign-in page, including a required password reset.
"use strict";

(function (K) {
  const { state, main, el, field, errorBox, showError, post, kms, iam, trail, fmtDate, setPage, prettyJSON } = K;

  // ---- sign-in ----

  function renderSignIn(notice) {
    document.getElementById("nav").hidden = true;
    document.getElementById("signout").hidden = true;
    document.getElementById("region-label").hidden = true;
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
        if (!location.hash || location.hash === "#/signin") location.hash = "#/keys"; else K.route();
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
    // The region of the KMS calls: the one last chosen in this tab, or
    // the server's default. Keys, aliases and grants are per region.
    const regions = me.regions || [];
    const saved = sessionStorage.getItem("kms-region");
    state.region = regions.includes(saved) ? saved : (me.region || "");
    const sel = document.getElementById("region");
    sel.replaceChildren(...regions.map((r) => el("option", { value: r }, r)));
    sel.value = state.region;
    document.getElementById("region-label").hidden = regions.length === 0;
  }

  Object.assign(K, { renderSignIn, signedIn });
})(window.KMS);
