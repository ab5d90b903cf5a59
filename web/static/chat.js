// Progressive enhancement of the chat form: stream answers over SSE and keep the conversation on the page.
// Streamed words and errors are inserted with textContent; the finished answer is the server's own rendering.
(function () {
  "use strict";
  var form = document.getElementById("ask-form");
  var input = document.getElementById("question");
  var conversation = document.getElementById("conversation");
  var status = document.getElementById("status");
  if (!form || !window.fetch || !window.TextDecoder) return;
  var asked = [];  // this session's questions, so a follow-up ("When did she land?") finds its subject
  var streamUrl = form.dataset.streamUrl;
  var historyTurns = parseInt(form.dataset.history, 10) || 5;
  var STORE = "rag-conversation", KEPT_TURNS = 30;
  var following = true;  // while an answer streams, the page follows it unless the reader scrolls up

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  // The answer is rendered once, on the server, by the template the no-JavaScript page uses; it arrives in
  // the stream's `html` event and is inserted as it is (the server escapes every article and question text).
  function renderAnswer(box, html) {
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();
    var rendered = holder.content.firstElementChild;
    if (rendered) box.replaceWith(rendered);
    return rendered || box;
  }

  // The conversation survives a reload, and Back from an article: each finished turn is kept for this tab as
  // the question and the server's rendering of its answer.
  function storedTurns() {
    try { return JSON.parse(sessionStorage.getItem(STORE) || "[]"); } catch (e) { return []; }
  }
  function keepTurn(question, html) {
    try {
      var turns = storedTurns().concat([{ question: question, html: html }]).slice(-KEPT_TURNS);
      sessionStorage.setItem(STORE, JSON.stringify(turns));
    } catch (e) { /* storage full or disabled: the page still works, it just forgets */ }
  }
  function addTurn(question) {
    var turn = el("div", "turn");
    turn.appendChild(el("p", "question", question));
    conversation.appendChild(turn);
    return turn;
  }
  function restore() {
    if (conversation.querySelector(".turn")) return;  // a no-JavaScript answer is already on the page
    storedTurns().forEach(function (t) {
      var box = el("article", "answer");
      addTurn(t.question).appendChild(box);
      renderAnswer(box, t.html);
      asked.push(t.question);
    });
    var last = conversation.lastElementChild;
    if (last) showStart(last);
  }
  function newConversation() {
    try { sessionStorage.removeItem(STORE); } catch (e) { /* nothing kept */ }
    asked = [];
    conversation.textContent = "";
    status.textContent = "";
    input.focus();
  }

  // Where the pinned form begins: content below it is hidden behind it.
  function formTop() { return form.getBoundingClientRect().top; }
  // The newest turn in view above the form: whole if it fits, else from its start.
  function showStart(turn) {
    var r = turn.getBoundingClientRect(), room = formTop() - 8;
    if (r.top < 0) window.scrollBy(0, r.top - 8);
    else if (r.bottom > room) window.scrollBy(0, Math.min(r.top - 8, r.bottom - room));
  }
  // While streaming, keep the growing answer's end above the form, unless the reader has scrolled up.
  function follow(box) {
    if (!following) return;
    var overlap = box.getBoundingClientRect().bottom - formTop() + 8;
    if (overlap > 0) window.scrollBy(0, overlap);
  }
  window.addEventListener("wheel", function (ev) { if (ev.deltaY < 0) following = false; }, { passive: true });
  window.addEventListener("touchmove", function () { following = false; }, { passive: true });

  function renderError(box, message) {
    box.textContent = "";
    box.className = "answer error";
    box.setAttribute("role", "alert");
    box.appendChild(el("p", null, message));
  }

  function parseEvents(buffer, onEvent) {
    var parts = buffer.split("\n\n");
    var rest = parts.pop();
    parts.forEach(function (block) {
      var event = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) event = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    });
    return rest;
  }

  function localToday() {
    var d = new Date();
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  }
  // The reader's own date is the time of asking, so "this week" means this week where they are.
  function dateFilters() {
    var f = {};
    var since = document.getElementById("since"), until = document.getElementById("until");
    var recent = document.getElementById("recent");
    if (since && since.value) f.since = since.value;
    if (until && until.value) f.until = until.value;
    if (recent && recent.checked) f.as_of = localToday();
    return f;
  }

  async function ask(question) {
    var turn = addTurn(question);
    var box = el("article", "answer loading");
    var text = el("p", "answer-text");
    box.appendChild(text);
    turn.appendChild(box);
    following = true;
    showStart(turn);
    status.textContent = "Searching the articles…";
    var button = form.querySelector("button");
    button.disabled = true;
    var finished = false;
    try {
      var resp = await fetch(streamUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: JSON.stringify(Object.assign({ question: question, history: asked.slice(-historyTurns) }, dateFilters()))
      });
      if (!resp.ok) {
        var msg = "The request was rejected (" + resp.status + ").";
        try { msg = (await resp.json()).error || msg; } catch (e) { /* keep the generic message */ }
        renderError(box, msg);
        status.textContent = "";
        return;
      }
      var reader = resp.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      while (true) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), function (event, data) {
          if (event === "passages") status.textContent = "Reading " + data.length + " passages…";
          else if (event === "token") { text.textContent += data; follow(box); }
          else if (event === "html") { box = renderAnswer(box, data); finished = true; keepTurn(question, data); }
          else if (event === "error") { renderError(box, data.error); finished = true; }
        });
      }
      if (!finished) renderError(box, "The answer was cut off. Please ask again.");
      status.textContent = "";
    } catch (e) {
      renderError(box, "Cannot reach the server. Check that `rag serve` is running, then ask again.");
      status.textContent = "";
    } finally {
      button.disabled = false;
      box.classList.remove("loading");
      showStart(turn);
    }
  }

  // A citation opens over the chat: the cited sentence highlighted in its paragraph, with a link to the whole
  // article. A modified click (new tab, new window) keeps the plain link, as does a page without JavaScript.
  var articles = {};
  var panel = el("dialog", "source-panel");
  panel.setAttribute("aria-label", "Source");
  document.body.appendChild(panel);
  panel.addEventListener("click", function (ev) { if (ev.target === panel) panel.close(); });

  async function article(id) {
    if (!articles[id]) {
      var resp = await fetch(form.dataset.articlesUrl + "/" + encodeURIComponent(id), { headers: { "Accept": "application/json" } });
      if (!resp.ok) throw new Error((await resp.json()).error || "The article could not be read.");
      articles[id] = await resp.json();
    }
    return articles[id];
  }

  // The paragraph around characters [start, end) of text, split in three: before, cited, after. Offsets count
  // code points, as the server's do.
  function paragraph(text, start, end) {
    var chars = Array.from(text);
    var from = start, to = end;
    while (from > 0 && chars[from - 1] !== "\n") from--;
    while (to < chars.length && chars[to] !== "\n") to++;
    return [chars.slice(from, start).join(""), chars.slice(start, end).join(""), chars.slice(end, to).join("")];
  }

  async function openSource(link) {
    var url = new URL(link.href, location.href);
    var range = (url.searchParams.get("hl") || "").split("-").map(Number);
    var id = decodeURIComponent(url.pathname.split("/").pop());
    panel.textContent = "";
    var close = el("button", "close", "Close");
    close.type = "button";
    close.addEventListener("click", function () { panel.close(); });
    panel.appendChild(close);
    panel.showModal();
    try {
      var a = await article(id);
      panel.appendChild(el("h2", null, a.title || id));
      panel.appendChild(el("p", "meta", [a.source, a.published || "date unknown"].filter(Boolean).join(" · ")));
      var parts = paragraph(a.text, range[0], range[1]);
      var p = el("p", "source-paragraph", parts[0]);
      p.appendChild(el("mark", null, parts[1]));
      p.appendChild(document.createTextNode(parts[2]));
      panel.appendChild(p);
      var whole = el("a", "whole-article", "Open the whole article");
      whole.href = link.href;
      panel.appendChild(whole);
    } catch (e) {
      panel.appendChild(el("p", "error", e.message || "The article could not be read."));
    }
    close.focus();
  }

  conversation.addEventListener("click", function (ev) {
    var link = ev.target.closest("a.marker, a.source-marker");
    if (!link || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return;
    if (typeof panel.showModal !== "function") return;
    ev.preventDefault();
    openSource(link);
  });

  var fresh = el("button", "new-conversation", "New conversation");
  fresh.type = "button";
  fresh.addEventListener("click", newConversation);
  form.querySelector(".hint").appendChild(fresh);
  restore();

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = input.value.trim();
    if (!q) { status.textContent = "Type a question first."; input.focus(); return; }
    input.value = "";
    ask(q).then(function () { asked.push(q); input.focus(); });
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
})();
