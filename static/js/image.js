// The image page: while the layer analysis is queued or running, ask the API for its status and reload the
// page once it has ended, so the file trees and wasted bytes appear without a manual refresh. Needs poll.js.
(function () {
  "use strict";
  var head = document.getElementById("image");
  if (!head) { return; }

  function analysing(body) { return body.analysis_status === "queued" || body.analysis_status === "running"; }

  if (!analysing({ analysis_status: head.dataset.analysis })) { return; }
  consolePoll.follow(head.dataset.api, 2000, function (body) {
    if (!analysing(body)) { window.location.reload(); }
  }, { delay: 2000, isDone: function (body) { return !analysing(body); } });
}());
