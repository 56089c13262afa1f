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

  window.consolePoll = { every: every, follow: follow, followLog: followLog, getJSON: getJSON, isFinal: isFinal };
}());
