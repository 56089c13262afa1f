// Image pickers (the push and deploy forms): a search box over the <select data-picker> of the user's images,
// which hides the options that do not match what is typed (tags, short id, date); picking an image empties the
// form's free-text reference and typing a reference un-picks the image, so that the form never holds both.
// Port and environment rows (the deploy form): each row's "Remove" takes it away (the last one is emptied).
(function () {
  "use strict";

  document.querySelectorAll("select[data-picker]").forEach(function (select) {
    var form = select.form;
    var typed = form ? form.querySelector("input[name=image]") : null;
    var search = document.createElement("input");
    search.type = "search";
    search.placeholder = "Search your images (tag, id, date)";
    search.setAttribute("aria-label", "Search your images");
    search.className = "picker-search";
    search.id = select.id + "-search";
    select.before(search);

    search.addEventListener("input", function () {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var firstShown = null;
      Array.prototype.forEach.call(select.options, function (option) {
        if (!option.value) { return; }
        var text = option.textContent.toLowerCase();
        var match = words.every(function (word) { return text.indexOf(word) >= 0; });
        option.hidden = !match;
        if (match && !firstShown) { firstShown = option; }
      });
      var current = select.selectedOptions[0];
      if (firstShown && (!current || !current.value || current.hidden)) {
        select.value = firstShown.value;
        select.dispatchEvent(new Event("change"));
      }
    });
    select.addEventListener("change", function () {
      if (select.value && typed) { typed.value = ""; }
    });
    if (typed) {
      typed.addEventListener("input", function () {
        if (typed.value.trim()) { select.value = ""; }
      });
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-remove-row]");
    if (!button) { return; }
    var row = button.closest(".row");
    var rows = row.parentNode.querySelectorAll(".row");
    if (rows.length > 1) {
      row.remove();
    } else {
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    }
  });
}());
