// A push or pull page: poll the job's API until it ends, redrawing the per-layer progress bars and the log.
// Needs poll.js.
(function () {
  "use strict";
  var panel = document.getElementById("transfer");
  if (!panel) { return; }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function drawLayers(layers) {
    var body = document.querySelector("#layers tbody");
    body.textContent = "";
    if (!layers.length) {
      var empty = document.createElement("tr");
      cell(empty, "No layers yet.").colSpan = 3;
      body.appendChild(empty);
      return;
    }
    layers.forEach(function (layer) {
      var row = document.createElement("tr");
      var id = document.createElement("code");
      id.textContent = layer.id;
      cell(row, "").appendChild(id);
      cell(row, layer.status);
      var bar = document.createElement("progress");
      // A layer that is done fills its bar, even one sent in one piece with no total to count against.
      bar.max = layer.total || 1;
      bar.value = layer.done ? bar.max : (layer.total ? layer.current : 0);
      bar.title = layer.total ? Math.round(100 * bar.value / bar.max) + "%" : layer.status;
      cell(row, "").appendChild(bar);
      body.appendChild(row);
    });
  }

  function draw(job) {
    consolePoll.setStatus(document.getElementById("job-status"), job.status);
    document.getElementById("job-digest").textContent = job.digest || "—";
    var imageId = document.getElementById("job-image-id");
    if (imageId) { imageId.textContent = job.image_id || "—"; }
    document.getElementById("job-error").textContent = job.error || "";
    consolePoll.replaceText(document.getElementById("job-log"), job.log || "");
    drawLayers(job.layers || []);
  }

  consolePoll.follow(panel.dataset.api, 1000, draw);
}());
