// A git clone's page: poll the clone job's API until it ends; when it succeeded, open the new source.
(function () {
  "use strict";
  var panel = document.getElementById("source-import");
  if (!panel) { return; }
  var url = panel.dataset.api;
  var FINAL = { succeeded: true, failed: true, cancelled: true };

  function draw(job) {
    var badge = document.getElementById("import-status");
    badge.textContent = job.status.charAt(0).toUpperCase() + job.status.slice(1);
    badge.className = "badge " + job.status;
    document.getElementById("import-error").textContent = job.error || "";
    document.getElementById("import-log").textContent = job.log || "";
    if (job.source) {
      var link = document.createElement("a");
      link.href = panel.dataset.sourceUrl + job.source + "/";
      link.textContent = "source #" + job.source;
      var where = document.getElementById("import-source");
      where.textContent = "";
      where.appendChild(link);
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (job) {
        draw(job);
        if (job.status === "succeeded" && job.source) {
          window.location.assign(panel.dataset.sourceUrl + job.source + "/");
        } else if (!FINAL[job.status]) {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();
