// A git clone's page: poll the clone job's API until it ends; when it succeeded, open the new source.
// Needs poll.js.
(function () {
  "use strict";
  var panel = document.getElementById("source-import");
  if (!panel) { return; }
  // data-source-url is the page of source 0 (the server's {% url %}): swap in the new source's id.
  function sourceUrl(id) { return panel.dataset.sourceUrl.replace(/\/0\/$/, "/" + id + "/"); }

  function draw(job) {
    consolePoll.setStatus(document.getElementById("import-status"), job.status);
    document.getElementById("import-error").textContent = job.error || "";
    consolePoll.replaceText(document.getElementById("import-log"), job.log || "");
    if (job.source) {
      var link = document.createElement("a");
      link.href = sourceUrl(job.source);
      link.textContent = "source #" + job.source;
      var where = document.getElementById("import-source");
      where.textContent = "";
      where.appendChild(link);
    }
  }

  consolePoll.follow(panel.dataset.api, 1000, function (job) {
    draw(job);
    if (job.status === "succeeded" && job.source) { window.location.assign(sourceUrl(job.source)); }
  });
}());
