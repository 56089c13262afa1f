// The deployment page of a swarm deployment: the service's task timeline, asked of the server as the page draws it
// (fleet:deployment-service, templates/fleet/service_timeline.html, which escapes the engine's text) every second
// and swapped in, until the answer says the deployment has ended. The answer is parsed as an inert document (no
// script of it runs) and only its timeline is taken. Needs poll.js.
(function () {
  "use strict";
  var section = document.getElementById("service-timeline");
  if (!section) { return; }
  var body = document.getElementById("service-timeline-body");
  if (!body || body.dataset.final === "true") { return; }
  var status = document.getElementById("service-timeline-status");
  var last = "";

  function summary(root) {
    return Array.prototype.map.call(root.querySelectorAll("[data-field=summary]"), function (line) {
      return line.textContent.replace(/\s+/g, " ").trim();
    }).join(" ");
  }

  function tick() {
    return fetch(section.dataset.url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("service-timeline-body");
        if (!fresh) { throw new Error("no timeline in the answer"); }
        var current = document.getElementById("service-timeline-body");
        // Unchanged: keep the page as it is (a reader's selection, the scroll position).
        if (html !== last) {
          last = html;
          current.replaceWith(document.importNode(fresh, true));
          // Said to screen readers in one line, only when it changed (the tables are read at will).
          var said = summary(fresh);
          if (status && status.textContent !== said) { status.textContent = said; }
        }
        return fresh.dataset.final === "true";
      });
  }

  consolePoll.every(1000, tick, { delay: 500, retry: 2000 });
}());
