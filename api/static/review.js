// Keyboard shortcuts for the review queue: A accept, R reject, N/J next (skip), K previous.
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("article.card"));
  if (!cards.length) { return; }
  var current = 0;
  function focus(i, quiet) {
    current = Math.max(0, Math.min(cards.length - 1, i));
    cards[current].focus({ preventScroll: true });
    if (!quiet) { cards[current].scrollIntoView({ block: "start" }); }
  }
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var key = event.key.toLowerCase();
    var card = cards[current];
    if (key === "a") { card.querySelector("[data-action=accept]").click(); }
    else if (key === "r") { card.querySelector("[data-action=reason]").focus(); }
    else if (key === "n" || key === "j") { focus(current + 1); }
    else if (key === "k") { focus(current - 1); }
    else { return; }
    event.preventDefault();
  });
  cards.forEach(function (card, i) {
    card.querySelector("[data-action=next]").addEventListener("click", function (event) {
      event.preventDefault();
      focus(i + 1);
    });
    card.addEventListener("focusin", function () { current = i; });
  });
  focus(0, true);  // ready for shortcuts, but the filters and the help line stay in view
})();

// Rejecting with 其他 needs a note: say so beside the field before the form leaves the page.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form.reject"), function (form) {
    var reason = form.querySelector("[data-action=reason]");
    var note = form.querySelector("[data-action=note]");
    var missing = form.querySelector("[data-role=note-missing]");
    if (!reason || !note) { return; }
    // aria-required, not required: the browser's own bubble would stop the form before our message shows.
    function sync() {
      var needed = reason.value === "其他";
      note.setAttribute("aria-required", needed ? "true" : "false");
      if (!needed && missing) { missing.hidden = true; }
    }
    reason.addEventListener("change", sync);
    sync();
    form.addEventListener("submit", function (event) {
      if (reason.value === "其他" && !note.value.trim()) {
        event.preventDefault();
        if (missing) { missing.hidden = false; }
        note.focus();
      }
    });
  });
})();

// Bulk decisions: "select all" ticks every card of this page for the bulk form.
(function () {
  "use strict";
  var all = document.querySelector("[data-action=select-all]");
  if (!all) { return; }
  all.addEventListener("change", function () {
    Array.prototype.forEach.call(document.querySelectorAll("input[name=ids][form=bulk]"), function (box) {
      box.checked = all.checked;
    });
  });
})();
