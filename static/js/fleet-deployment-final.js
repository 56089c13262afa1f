// The deployment page, once the deployment ends: the parts the server words from the final state (the current
// release and its URLs, the grouped errors, Retry/Redeploy/Roll back, the releases) are fetched again as the
// server renders them and swapped in, so that the page never keeps saying what was true while it ran.
// Needs poll.js; fleet-deployment.js draws the progress meanwhile.
(function () {
  "use strict";
  var panel = document.getElementById("deployment");
  if (!panel || panel.dataset.final === "true") { return; }

  function refresh() {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-refresh]").forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next) { old.replaceWith(document.importNode(next, true)); }
        });
        panel.dataset.final = "true";
      });
  }

  consolePoll.every(1000, function () {
    return consolePoll.getJSON(panel.dataset.api).then(function (state) {
      if (!consolePoll.isFinal(state.status)) { return false; }
      return refresh().then(function () { return true; });
    });
  }, { delay: 500, retry: 1000 });
}());
