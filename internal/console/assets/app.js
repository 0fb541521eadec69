// app.js: routing by the URL fragment, and start-up.
"use strict";

(function (K) {
  const { state, main, el, field, errorBox, showError, post, kms, iam, trail, fmtDate, setPage, prettyJSON } = K;

  // ---- routing ----

  async function route() {
    if (!state.me) { K.renderSignIn(); return; }
    const h = location.hash || "#/keys";
    try {
      if (h.startsWith("#/keys/")) await K.renderKey(decodeURIComponent(h.slice(7)));
      else if (h === "#/create") await K.renderWizard();
      else if (h === "#/audit") await K.renderAudit();
      else if (h === "#/iam") await K.renderIAM();
      else await K.renderKeys();
    } catch (e) {
      if (state.me) { const b = errorBox(); main().append(b); showError(b, e); }
    }
    main().focus();
  }

  window.addEventListener("hashchange", route);
  document.addEventListener("DOMContentLoaded", async () => {
    document.getElementById("region").addEventListener("change", (ev) => {
      state.region = ev.target.value;
      sessionStorage.setItem("kms-region", state.region);
      if (location.hash.startsWith("#/keys/")) location.hash = "#/keys"; else route();
    });
    document.getElementById("signout").addEventListener("click", async () => {
      try { await post("signout", {}); } catch (e) { /* signed out anyway */ }
      state.me = null; state.csrf = "";
      location.hash = "";
      K.renderSignIn("You are signed out.");
    });
    try {
      K.signedIn(await post("session", {}));
    } catch (e) {
      state.me = null;
    }
    route();
  });

  Object.assign(K, { route });
})(window.KMS);
