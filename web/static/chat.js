// Progressive enhancement of the chat form: stream answers over SSE and keep the conversation on the page.
// All server text is inserted with textContent, never innerHTML, so article text and questions stay inert.
(function () {
  "use strict";
  var form = document.getElementById("ask-form");
  var input = document.getElementById("question");
  var conversation = document.getElementById("conversation");
  var status = document.getElementById("status");
  if (!form || !window.fetch || !window.TextDecoder) return;
  var asked = [];  // this session's questions, so a follow-up ("When did she land?") finds its subject

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function articleHref(articleId, start, end) {
    return "/articles/" + encodeURIComponent(articleId) + "?hl=" + start + "-" + end + "#hl";
  }

  function renderAnswer(box, a) {
    box.textContent = "";
    box.className = "answer" + (a.abstained ? " abstained" : "");
    box.dataset.backend = a.backend;
    if (a.notice) {
      var note = el("p", "notice", a.notice);
      note.setAttribute("role", "status");
      box.appendChild(note);
    }
    if (a.abstained) {
      box.appendChild(el("p", "abstain-label", "No answer found"));
      box.appendChild(el("p", "answer-text", a.answer));
    } else {
      if (a.short_answer) {
        var sa = el("p", "short-answer");
        sa.appendChild(el("span", "label", "Answer"));
        sa.appendChild(document.createTextNode(" "));
        sa.appendChild(el("strong", null, a.short_answer));
        box.appendChild(sa);
      }
      var byN = {};
      a.citations.forEach(function (c) { byN[c.n] = c; });
      var p = el("p", "answer-text");
      a.answer.split(/(\[\d+\])/).forEach(function (part) {
        var m = /^\[(\d+)\]$/.exec(part);
        if (m && byN[m[1]]) {
          var c = byN[m[1]];
          var link = el("a", "marker", part);
          link.href = articleHref(c.article_id, c.start, c.end);
          link.title = c.title;
          p.appendChild(link);
        } else if (part) {
          p.appendChild(document.createTextNode(part));
        }
      });
      box.appendChild(p);
      var sources = el("section", "sources");
      sources.setAttribute("aria-label", "Sources");
      sources.appendChild(el("h3", null, "Sources"));
      var ol = el("ol");
      a.citations.forEach(function (c) {
        var li = el("li");
        li.value = c.n;
        var t = el("a", "source-title", c.title);
        t.href = articleHref(c.article_id, c.start, c.end);
        li.appendChild(t);
        li.appendChild(el("span", "meta", (c.source ? c.source + " · " : "") + (c.published || "date unknown")));
        li.appendChild(el("blockquote", null, c.quote));
        ol.appendChild(li);
      });
      sources.appendChild(ol);
      box.appendChild(sources);
    }
    var removed = (a.sentences || []).filter(function (x) { return !x.supported; });
    if (removed.length) {
      var sec = el("section", "unsupported");
      sec.setAttribute("aria-label", "Claims removed by verification");
      sec.appendChild(el("h3", null, "Removed: not supported by the sources"));
      var ul = el("ul");
      removed.forEach(function (x) {
        var li = el("li");
        li.appendChild(el("del", null, x.text));
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "reason", x.reason));
        ul.appendChild(li);
      });
      sec.appendChild(ul);
      box.appendChild(sec);
    }
    if (a.extractive && a.backend !== "extractive") {
      var ev = el("details", "evidence");
      ev.appendChild(el("summary", null, "Verbatim evidence" + (a.extractive.short_answer ? ": " + a.extractive.short_answer : "")));
      ev.appendChild(el("p", null, a.extractive.answer));
      box.appendChild(ev);
    }
    if (a.passages && a.passages.length) {
      var d = el("details", "passages");
      d.appendChild(el("summary", null, "Passages read (" + a.passages.length + ")"));
      var pol = el("ol");
      a.passages.forEach(function (ps) {
        var li = el("li");
        var link = el("a", null, ps.title || ps.article_id);
        link.href = articleHref(ps.article_id, ps.start, ps.end);
        li.appendChild(link);
        li.appendChild(el("p", null, ps.text));
        pol.appendChild(li);
      });
      d.appendChild(pol);
      box.appendChild(d);
    }
    var total = a.timings_ms && a.timings_ms.total ? Math.round(a.timings_ms.total) : 0;
    box.appendChild(el("p", "timing", a.backend + " · " + total + " ms"));
  }

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
    var turn = el("div", "turn");
    turn.appendChild(el("p", "question", question));
    var box = el("article", "answer loading");
    var text = el("p", "answer-text");
    box.appendChild(text);
    turn.appendChild(box);
    conversation.appendChild(turn);
    status.textContent = "Searching the articles…";
    var button = form.querySelector("button");
    button.disabled = true;
    var finished = false;
    try {
      var resp = await fetch("/api/ask/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: JSON.stringify(Object.assign({ question: question, history: asked.slice(-5) }, dateFilters()))
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
          else if (event === "token") text.textContent += data;
          else if (event === "answer") { renderAnswer(box, data); finished = true; }
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
      turn.scrollIntoView({ block: "end" });
    }
  }

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
