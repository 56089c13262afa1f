// The deployment page: poll the API for each host's progress and the log until the deployment has ended.
(function () {
  const panel = document.getElementById("deployment");
  if (!panel || panel.dataset.final === "true") return;
  let offset = parseInt(panel.dataset.offset, 10) || 0;
  const log = document.getElementById("log");

  function setText(row, field, text) {
    const cell = row.querySelector(`[data-field="${field}"]`);
    if (cell) cell.textContent = text || "";
  }

  function showTarget(target) {
    const row = document.querySelector(`#targets tr[data-host="${CSS.escape(target.host_name)}"]`);
    if (!row) return;
    const badge = row.querySelector('[data-field="status"]');
    badge.textContent = target.status;
    badge.className = `badge ${target.status}`;
    setText(row, "step", target.step);
    setText(row, "error", target.error);
    const cell = row.querySelector('[data-field="url"]');
    if (target.url && !cell.querySelector("a")) {
      const link = document.createElement("a");
      link.href = target.url;
      link.textContent = target.url;
      cell.replaceChildren(link);
    }
  }

  async function poll() {
    try {
      const [state, lines] = await Promise.all([
        fetch(panel.dataset.api, { credentials: "same-origin" }).then((r) => r.json()),
        fetch(`${panel.dataset.log}?offset=${offset}`, { credentials: "same-origin" }).then((r) => r.json()),
      ]);
      state.targets.forEach(showTarget);
      const status = document.getElementById("deployment-status");
      status.textContent = state.status;
      status.className = `badge ${state.status}`;
      document.getElementById("deployment-error").textContent = state.error;
      lines.lines.forEach((line) => log.append(`${line}\n`));
      offset = lines.next_offset;
      if (["succeeded", "failed", "cancelled"].includes(state.status) && lines.finished) return;
    } catch (error) {
      // A missed poll is retried on the next tick.
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 500);
})();
