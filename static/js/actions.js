// Small actions every page may use, loaded by base.html (a plain script: the CSP allows no inline code).
// - <button type="button" class="copy" data-copy="TEXT"> or data-copy-target="#id" puts the text (or the target's
//   text or value) on the clipboard and says "Copied" for a moment.
// - <form data-confirm="Question?"> asks before it submits; cancelling leaves the page as it was.
// - Tables no template wrapped get a scrolling wrapper, so a wide table scrolls inside its panel, not the page.
(function () {
  "use strict";

  var COPIED_MS = 2000;

  function copyText(button) {
    if (button.dataset.copyTarget) {
      var target = document.querySelector(button.dataset.copyTarget);
      if (!target) { return null; }
      return ("value" in target && target.tagName !== "BUTTON") ? target.value : target.textContent.trim();
    }
    return button.dataset.copy;
  }

  // The fallback of pages served over plain http from another address (no navigator.clipboard there).
  function copyWithSelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.top = "-1000px";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (ignored) { copied = false; }
    area.remove();
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function writeClipboard(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return copyWithSelection(text); });
    }
    return copyWithSelection(text);
  }

  function say(button, text, className) {
    if (!button.dataset.label) { button.dataset.label = button.textContent; }
    button.textContent = text;
    button.classList.remove("copied", "copy-failed");
    button.classList.add(className);
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      button.textContent = button.dataset.label;
      button.classList.remove(className);
    }, COPIED_MS);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) { return; }
    var text = copyText(button);
    if (text === null || text === undefined) { return; }
    writeClipboard(text).then(function () { say(button, "Copied", "copied"); },
      function () { say(button, "Select and copy", "copy-failed"); });
  });

  // In the capture phase, so the question comes before any other submit handler of the page (upload.js, ...).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset || !form.dataset.confirm) { return; }
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Also for a script that swaps in fresh server-rendered parts of its page: wrapTables(thePart).
  function wrapTables(root) {
    (root || document).querySelectorAll("table.table").forEach(function (table) {
      if (table.parentElement.classList.contains("table-wrap")) { return; }
      var wrap = document.createElement("div");
      wrap.className = "table-wrap";
      table.before(wrap);
      wrap.appendChild(table);
    });
  }
  wrapTables(document);

  window.consoleActions = { copy: writeClipboard, wrapTables: wrapTables };
}());
