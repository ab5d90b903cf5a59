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
          else if (event === "token") text.textContent += data;
          else if (event === "html") { box = renderAnswer(box, data); finished = true; }
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
