// The image page: while the layer analysis is queued or running, ask the API for its status and reload the
// page once it has ended, so the file trees and wasted bytes appear without a manual refresh.
(function () {
  "use strict";
  var head = document.getElementById("image");
  if (!head) { return; }
  var status = head.dataset.analysis;
  if (status !== "queued" && status !== "running") { return; }
  function poll() {
    fetch(head.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body.analysis_status !== "queued" && body.analysis_status !== "running") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 2000);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();
