// The one polling mechanism of the pages that follow a job (build, push/pull, deployment, git clone, image
// analysis): ask the API for JSON on a timer until the page says the job has ended. Each page keeps only its
// drawing code. A plain script (no module), loaded before the page's own script, which finds it as `consolePoll`.
(function () {
  "use strict";

  // A request that failed (network, 5xx, a restarting console) is asked again after this long.
  var RETRY_MS = 2000;
  var FINAL = ["succeeded", "failed", "cancelled"];

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  // Calls `tick()` (which returns a value or a promise) every `interval` ms until it yields true. Options:
  // `delay` before the first tick (0), `retry` after a tick that failed (RETRY_MS).
  function every(interval, tick, options) {
    var settings = options || {};
    var retry = settings.retry || RETRY_MS;
    function run() {
      Promise.resolve().then(tick).then(function (done) {
        if (!done) { window.setTimeout(run, interval); }
      }, function () { window.setTimeout(run, retry); });
    }
    window.setTimeout(run, settings.delay || 0);
  }

  // Polls the JSON at `url`, hands each answer to `draw`, and stops once `isDone(answer)` (by default: the
  // answer's `status` is final).
  function follow(url, interval, draw, options) {
    var settings = options || {};
    var isDone = settings.isDone || function (answer) { return isFinal(answer.status); };
    every(interval, function () {
      return getJSON(url).then(function (answer) {
        draw(answer);
        return isDone(answer);
      });
    }, settings);
  }

  // Follows a job's log endpoint (`{lines, next_offset, finished}`) from `offset`, handing new lines to
  // `append`, until the log is finished.
  function followLog(url, offset, interval, append, options) {
    var next = offset || 0;
    every(interval, function () {
      return getJSON(url + "?offset=" + next).then(function (chunk) {
        if (chunk.lines.length) { append(chunk.lines); }
        next = chunk.next_offset;
        return chunk.finished;
      });
    }, options);
  }

  function isFinal(status) { return FINAL.indexOf(status) >= 0; }

  // A status badge as the templates draw it (`<span class="badge {{ job.status }}">{{ job.get_status_display }}`):
  // the class is the status, the text its label (the job statuses are single words). A template that wrote the
  // bare status (`{{ build.status }}`) keeps it bare, so the badge reads the same before and after a reload.
  function setStatus(badge, status) {
    if (!badge || !status) { return; }
    if (!badge.dataset.statusCase) {
      var shown = badge.textContent.trim();
      badge.dataset.statusCase = shown && shown === shown.toLowerCase() ? "bare" : "label";
    }
    badge.textContent = badge.dataset.statusCase === "bare" ? status : status.charAt(0).toUpperCase() + status.slice(1);
    badge.className = "badge " + status;
  }

  // Whether a log box shows its end (within a line), so new text should keep it there.
  function atEnd(box) { return box.scrollTop + box.clientHeight >= box.scrollHeight - 24; }
  function toEnd(box) { box.scrollTop = box.scrollHeight; }

  // Adds lines to a log box, following the end unless the reader scrolled up to read.
  function appendLines(box, lines) {
    var follow = atEnd(box);
    box.appendChild(document.createTextNode(lines.join("\n") + "\n"));
    if (follow) { toEnd(box); }
  }

  // Replaces a log box's text (pages whose API returns the whole log), following the end the same way.
  function replaceText(box, text) {
    if (box.textContent === text) { return; }
    var follow = atEnd(box);
    box.textContent = text;
    if (follow) { toEnd(box); }
  }

  window.consolePoll = { every: every, follow: follow, followLog: followLog, getJSON: getJSON, isFinal: isFinal,
    setStatus: setStatus, appendLines: appendLines, replaceText: replaceText, toEnd: toEnd };
}());
