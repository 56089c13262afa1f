// Uploads a source archive through the API with a progress bar; without JavaScript the form posts normally.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var label = document.getElementById("upload-label");
  var error = document.getElementById("upload-error");

  function show(percent, text) {
    box.hidden = false;
    bar.style.width = percent + "%";
    label.textContent = text || (percent + "%");
  }

  form.addEventListener("submit", function (event) {
    var input = form.querySelector("input[type=file]");
    if (!input || !input.files.length) { return; }
    event.preventDefault();
    error.hidden = true;
    var data = new FormData();
    data.append("archive", input.files[0]);
    var request = new XMLHttpRequest();
    request.open("POST", form.dataset.api);
    request.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { show(Math.round(100 * e.loaded / e.total)); }
    });
    request.upload.addEventListener("load", function () { show(100, "Checking the archive…"); });
    request.addEventListener("load", function () {
      var body = {};
      try { body = JSON.parse(request.responseText); } catch (ignored) { body = {}; }
      if (request.status === 201) {
        show(100, "Stored");
        // data-source-url is the page of source 0 (the server's {% url %}): swap in the new source's id.
        window.location.href = form.dataset.sourceUrl.replace(/\/0\/$/, "/" + body.id + "/");
        return;
      }
      box.hidden = true;
      error.hidden = false;
      error.textContent = body.detail || (body.archive && body.archive.join(" ")) ||
        ("The upload failed (" + request.status + ").");
    });
    request.addEventListener("error", function () {
      box.hidden = true;
      error.hidden = false;
      error.textContent = "The upload did not reach the console; check the connection and try again.";
    });
    show(0);
    request.send(data);
  });
}());
