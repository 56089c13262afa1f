// The deploy form: "Add a port" and "Add a variable" copy the last row, emptied; ticking a swarm manager's host
// opens the Swarm settings (they stay in the page, folded, for plain hosts and for selectors).
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

  var swarm = document.getElementById("swarm-settings");
  var managers = document.querySelectorAll("input[name=hosts][data-swarm]");
  function openForManagers() {
    var ticked = Array.prototype.some.call(managers, function (box) { return box.checked; });
    if (ticked) { swarm.open = true; }
  }
  if (swarm) {
    managers.forEach(function (box) { box.addEventListener("change", openForManagers); });
    openForManagers();
  }
}());
