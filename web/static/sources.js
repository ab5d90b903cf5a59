// The Sources page: sign in with the API token (kept in sessionStorage, for this tab only), then follow feeds,
// fetch articles from links and upload files through the API, and see what was added or skipped, and why.
(function () {
  "use strict";
  const page = document.querySelector(".sources-page");
  const result = document.getElementById("result");
  const login = document.getElementById("login");
  const writers = document.getElementById("writers");
  const KEY = "rag-api-token";

  function token() { return sessionStorage.getItem(KEY) || ""; }
  function showSignedIn() {
    const signedIn = Boolean(token());
    login.hidden = signedIn;
    writers.hidden = !signedIn;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function report(title, body) {
    result.replaceChildren(el("h2", title));
    const list = el("ul");
    if (Array.isArray(body.skipped)) {
      list.append(el("li", `added ${body.added}, updated ${body.updated}, unchanged ${body.unchanged}, skipped ${body.skipped.length}`));
      for (const s of body.skipped) list.append(el("li", `skipped ${s.path}: ${s.reason}`, "error-text"));
      for (const w of body.warnings || []) list.append(el("li", `warning ${w.path}: ${w.reason}`));
    }
    for (const f of body.feeds || []) {
      const entries = f.entries === 1 ? "1 entry" : f.entries + " entries";
      const counts = f.entries ? ` (${entries}, ${plural(f.fetched, "page")} fetched; added ${f.added}, updated ${f.updated}, skipped ${f.skipped.length})` : "";
      list.append(el("li", `${f.name}: ${f.status}${counts}` + (f.error ? ` (${f.error})` : ""), f.error ? "error-text" : ""));
      for (const s of f.skipped) list.append(el("li", `skipped ${s.path}: ${s.reason}`, "error-text"));
    }
    if (body.name && body.url) list.append(el("li", `following '${body.name}' (${body.url})`));
    result.append(list);
    result.hidden = false;
    result.scrollIntoView({ block: "nearest" });
  }

  function say(text, cls) {
    result.replaceChildren(el("p", text, cls));
    result.hidden = false;
  }

  async function call(url, options, title) {
    say("Working…");
    const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
    let response;
    try {
      response = await fetch(url, Object.assign({}, options, { headers }));
    } catch (e) {
      say("The server could not be reached: " + e.message, "error-text");
      return null;
    }
    const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (response.status === 401 || response.status === 403 && /token/i.test(body.error || "")) {
      sessionStorage.removeItem(KEY);
      showSignedIn();
    }
    if (!response.ok) {
      say(body.error || `HTTP ${response.status}`, "error-text");
      return null;
    }
    report(title, body);
    return body;
  }

  function reloadSoon() { setTimeout(() => window.location.reload(), 1500); }
  function json(body) { return { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }; }

  login.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById("token").value.trim());
    document.getElementById("token").value = "";
    showSignedIn();
  });
  document.getElementById("sign-out").addEventListener("click", () => { sessionStorage.removeItem(KEY); showSignedIn(); });

  document.getElementById("add-feed").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = document.getElementById("feed-name").value.trim();
    const added = await call(page.dataset.feedsUrl, json({ url: document.getElementById("feed-url").value.trim(), name: name || null }), "Feed followed");
    if (!added) return;
    const refreshed = await call(page.dataset.refreshUrl, json({ feeds: [added.name] }), "Feed refreshed");
    if (refreshed) reloadSoon();
  });
  document.getElementById("refresh-feeds").addEventListener("click", async () => {
    if (await call(page.dataset.refreshUrl, json({}), "Feeds refreshed")) reloadSoon();
  });
  document.getElementById("add-urls").addEventListener("submit", async (e) => {
    e.preventDefault();
    const urls = document.getElementById("urls").value.split(/\s+/).filter(Boolean);
    await call(page.dataset.fetchUrl, json({ urls }), "Articles from links");
  });
  document.getElementById("upload").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new FormData();
    for (const f of document.getElementById("files").files) form.append("file", f);
    await call(page.dataset.uploadUrl, { method: "POST", body: form }, "Uploaded files");
  });
  for (const button of document.querySelectorAll(".remove-feed")) {
    button.addEventListener("click", async () => {
      if (!token()) { say("Sign in to remove a feed.", "error-text"); return; }
      const url = page.dataset.feedsUrl + "?feed=" + encodeURIComponent(button.dataset.feed);
      if (await call(url, { method: "DELETE" }, "Feed removed")) reloadSoon();
    });
  }
  showSignedIn();
})();
