// A garbage collection's page: poll its API until it ends, redrawing the status, the bytes freed, the error and
// the log. Needs poll.js.
(function () {
  "use strict";
  var panel = document.getElementById("gc");
  if (!panel || panel.dataset.final) { return; }

  // As Django's filesizeformat writes it on the first draw (1024-based, one decimal).
  function size(bytes) {
    if (bytes < 1024) { return bytes + (bytes === 1 ? " byte" : " bytes"); }
    var units = ["KB", "MB", "GB", "TB", "PB"];
    var value = bytes / 1024;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return value.toFixed(1) + "\u00a0" + units[unit];
  }

  function draw(job) {
    consolePoll.setStatus(document.getElementById("job-status"), job.status);
    var freed = document.getElementById("job-freed");
    freed.textContent = "";
    if (job.freed_bytes === null || job.freed_bytes === undefined) {
      freed.textContent = "—";
    } else {
      var shown = document.createElement("span");
      shown.title = job.freed_bytes + " bytes";
      shown.textContent = size(job.freed_bytes);
      freed.appendChild(shown);
    }
    var error = document.getElementById("job-error");
    error.textContent = job.error || "";
    error.hidden = !job.error;
    consolePoll.replaceText(document.getElementById("job-log"), job.log || "");
  }

  consolePoll.follow(panel.dataset.api, 1000, draw);
}());
