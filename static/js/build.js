// The build page: follows the log and the steps through the API until the build ends, then reloads once so
// the server renders the outcome (failure details, image link). Runs a debug command through the API.
// Needs poll.js.
(function () {
  "use strict";
  var root = document.getElementById("build");
  if (!root) { return; }
  var offset = parseInt(root.dataset.offset || "0", 10);
  var logBox = document.getElementById("build-log");
  var statusBadge = document.getElementById("build-status");
  var bar = document.getElementById("build-bar");
  var label = document.getElementById("build-progress-label");
  var stepsBody = document.querySelector("#build-steps tbody");
  var csrf = document.querySelector("[name=csrfmiddlewaretoken]");

  function renderSteps(build) {
    var total = build.step_count || 0;
    var done = build.steps.filter(function (s) { return s.status !== "running"; }).length;
    if (total) {
      bar.style.width = Math.round(100 * done / total) + "%";
      label.textContent = "step " + build.steps.length + " of " + total;
    } else if (build.queue_position) {
      label.textContent = "waiting: " + build.queue_position + " in line";
    } else {
      label.textContent = build.status;
    }
    stepsBody.textContent = "";
    build.steps.forEach(function (step) {
      var row = document.createElement("tr");
      row.className = "step " + step.status;
      var number = document.createElement("td");
      number.textContent = step.number;
      var instruction = document.createElement("td");
      if (step.stage) {
        var stage = document.createElement("span");
        stage.className = "badge stage";
        stage.textContent = step.stage;
        instruction.appendChild(stage);
        instruction.appendChild(document.createTextNode(" "));
      }
      var code = document.createElement("code");
      code.textContent = step.instruction.length > 80 ? step.instruction.slice(0, 79) + "…" : step.instruction;
      instruction.appendChild(code);
      if (step.cached) {
        var badge = document.createElement("span");
        badge.className = "badge cached";
        badge.textContent = "cache";
        instruction.appendChild(document.createTextNode(" "));
        instruction.appendChild(badge);
      }
      var time = document.createElement("td");
      time.className = "num";
      time.textContent = step.duration_ms === null ? "" : step.duration_ms + " ms";
      row.appendChild(number);
      row.appendChild(instruction);
      row.appendChild(time);
      stepsBody.appendChild(row);
    });
  }

  function appendLog(lines) { consolePoll.appendLines(logBox, lines); }

  function drawBuild(build) {
    consolePoll.setStatus(statusBadge, build.status);
    renderSteps(build);
    // Once the build has ended, reload once so the server renders the outcome.
    if (consolePoll.isFinal(build.status)) {
      window.setTimeout(function () { window.location.reload(); }, 600);
    }
  }

  // The page opens (and reopens after the build ended) at the log's end: its last line says how the build went.
  if (logBox) { consolePoll.toEnd(logBox); }

  if (!root.dataset.final) {
    consolePoll.followLog(root.dataset.log, offset, 400, appendLog);
    consolePoll.follow(root.dataset.api, 1000, drawBuild);
  } else if (parseInt(root.dataset.total || "0", 10)) {
    bar.style.width = Math.round(100 * parseInt(root.dataset.done, 10) / parseInt(root.dataset.total, 10)) + "%";
  }

  var debugForm = document.getElementById("debug-form");
  if (debugForm && window.fetch) {
    var output = document.getElementById("debug-output");
    debugForm.addEventListener("submit", function (event) {
      event.preventDefault();
      output.hidden = false;
      output.textContent = "Running…";
      fetch(debugForm.dataset.api, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf.value},
        body: JSON.stringify({command: debugForm.querySelector("[name=command]").value})
      }).then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
        .then(function (answer) {
          if (!answer.ok) {
            output.textContent = answer.body.detail || JSON.stringify(answer.body);
            return;
          }
          output.textContent = "exit code " + answer.body.exit_code + (answer.body.timed_out ? " (stopped: too long)" : "") +
            "\n" + answer.body.output;
        })
        .catch(function () { output.textContent = "The console did not answer."; });
    });
  }
}());
