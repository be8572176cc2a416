// Small behaviours of every page, here rather than inline: the Content-Security-Policy
// allows scripts from /static only.
(function () {
  "use strict";
  // <select data-autosubmit>: choosing a value submits its form.
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
  // <input type="checkbox" data-toggles="ID">: shows or hides the element ID.
  document.querySelectorAll("input[data-toggles]").forEach((box) => {
    const target = document.getElementById(box.dataset.toggles);
    if (!target) return;
    box.addEventListener("change", () => { target.style.display = box.checked ? "" : "none"; });
  });
  // <button data-confirm="question">: asks before submitting.
  document.querySelectorAll("button[data-confirm]").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
})();
