// The deploy form: "Add a port" and "Add a variable" copy the last row, emptied.
document.querySelectorAll("[data-add-row]").forEach((button) => {
  button.addEventListener("click", () => {
    const rows = document.getElementById(button.dataset.addRow).querySelectorAll(".row");
    const last = rows[rows.length - 1];
    const copy = last.cloneNode(true);
    copy.querySelectorAll("input").forEach((input) => { input.value = ""; });
    last.after(copy);
    copy.querySelector("input").focus();
  });
});
