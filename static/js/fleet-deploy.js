// The deploy form: "Add a port" and "Add a variable" copy the last row, emptied.
(function () {
  "use strict";
  document.querySelectorAll("[data-add-row]").forEach(function (button) {
    button.addEventListener("click", function () {
      var rows = document.getElementById(button.dataset.addRow).querySelectorAll(".row");
      var last = rows[rows.length - 1];
      var copy = last.cloneNode(true);
      copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      last.after(copy);
      copy.querySelector("input").focus();
    });
  });
}());
