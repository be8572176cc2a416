// Review queue keys: j/k next/previous part, o pass OK, n confirm NG, r review later,
// Enter open the part. A key presses the part's own form button, so the server's rules
// hold as for a click: NG needs a defect type, and passing a part castline held as NG or
// QUARANTINE still leads to the confirmation page that asks for a reason.
(function () {
  "use strict";
  const items = Array.from(document.querySelectorAll(".queue article.item"));
  const legend = document.getElementById("review-keys");
  if (!items.length) return;
  const status = legend ? legend.querySelector(".kbd-status") : null;
  const place = "castline.review.at:" + location.pathname + location.search;
  let at = Math.min(Number(sessionStorage.getItem(place)) || 0, items.length - 1);

  function say(text) { if (status) status.textContent = text; }

  function choose(index, focus) {
    at = Math.max(0, Math.min(index, items.length - 1));
    items.forEach((item, i) => {
      item.classList.toggle("current", i === at);
      if (i === at) item.setAttribute("aria-current", "true"); else item.removeAttribute("aria-current");
    });
    const item = items[at];
    item.tabIndex = -1;
    if (focus) { item.focus({ preventScroll: true }); item.scrollIntoView({ block: "nearest" }); }
  }

  function press(decision) {
    const item = items[at];
    const form = item.querySelector("form.review");
    if (!form) return;
    const button = form.querySelector('button[name="decision"][value="' + decision + '"]');
    if (decision === "NG") {
      const defect = form.querySelector('select[name="defect_type"]');
      if (defect && !defect.value) { defect.focus(); say(legend.dataset.needDefect); return; }
    }
    sessionStorage.setItem(place, String(at)); // the next page opens at the same place
    form.requestSubmit(button);
  }

  function later() {
    const item = items[at];
    item.classList.add("later");
    say((legend ? legend.dataset.later : "{part}").replace("{part}", item.dataset.part || ""));
    choose(at + 1, true);
  }

  const typing = (el) => el && (el.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName));

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); choose(at, true); }
      return;
    }
    const actions = {
      j: () => choose(at + 1, true),
      k: () => choose(at - 1, true),
      o: () => press("OK"),
      n: () => press("NG"),
      r: later,
      Enter: () => { const link = items[at].querySelector("a[href]"); if (link) location.href = link.href; },
    };
    const action = actions[event.key];
    if (!action) return;
    if (event.key === "Enter" && /^(A|BUTTON)$/.test(event.target.tagName)) return; // its own
    event.preventDefault();
    action();
  });

  // Clicking into a part makes it the current one; choosing a defect returns to the keys.
  items.forEach((item, i) => {
    item.addEventListener("focusin", () => { if (at !== i) choose(i, false); });
    const defect = item.querySelector('select[name="defect_type"]');
    if (defect) defect.addEventListener("change", () => { say(""); choose(i, true); });
  });
  choose(at, false);
})();
