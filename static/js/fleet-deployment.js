// The deployment page: poll the API for each host's progress and the log until the deployment has ended.
// Needs poll.js.
(function () {
  "use strict";
  var panel = document.getElementById("deployment");
  var log = document.getElementById("log");
  // The page opens at the log's end, where the latest step is.
  if (log) { consolePoll.toEnd(log); }
  if (!panel || panel.dataset.final === "true") { return; }

  function setText(row, field, text) {
    var cell = row.querySelector("[data-field=\"" + field + "\"]");
    if (cell) { cell.textContent = text || ""; }
  }

  function showTarget(target) {
    var row = document.querySelector("#targets tr[data-host=\"" + CSS.escape(target.host_name) + "\"]");
    if (!row) { return; }
    var badge = row.querySelector("[data-field=\"status\"]");
    consolePoll.setStatus(badge, target.status);
    setText(row, "step", target.step);
    setText(row, "error", target.error);
    var cell = row.querySelector("[data-field=\"url\"]");
    if (target.url && !cell.querySelector("a")) {
      var link = document.createElement("a");
      link.href = target.url;
      link.textContent = target.url;
      cell.replaceChildren(link);
    }
  }

  function draw(state) {
    state.targets.forEach(showTarget);
    consolePoll.setStatus(document.getElementById("deployment-status"), state.status);
    document.getElementById("deployment-error").textContent = state.error;
  }

  function appendLog(lines) { consolePoll.appendLines(log, lines); }

  consolePoll.follow(panel.dataset.api, 1000, draw, { delay: 500, retry: 1000 });
  consolePoll.followLog(panel.dataset.log, parseInt(panel.dataset.offset, 10) || 0, 1000, appendLog,
    { delay: 500, retry: 1000 });
}());
