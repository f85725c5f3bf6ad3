// The customer list's bulk bar: the value select offers only the chosen action's values, the
// "this page" box ticks every row, and the bar counts what is ticked. Delegated events, since
// htmx replaces the results (and the bar with them) as the user searches.
(function () {
  "use strict";

  function bar(form) {
    return {
      action: form.querySelector("[data-testid=bulk-action]"),
      value: form.querySelector("[data-testid=bulk-value]"),
      name: form.querySelector("[data-bulk-name]"),
      count: form.querySelector("[data-bulk-count]"),
      all: form.querySelector("[data-testid=bulk-all]"),
      picks: form.querySelectorAll("[data-testid=bulk-pick]"),
    };
  }

  function showValues(form) {
    var b = bar(form);
    if (!b.action || !b.value) return;
    var first = null;
    b.value.querySelectorAll("optgroup").forEach(function (group) {
      var mine = group.getAttribute("data-bulk-for") === b.action.value;
      group.hidden = !mine;
      group.disabled = !mine;
      if (mine && !first) first = group.querySelector("option");
    });
    var current = b.value.selectedOptions[0];
    if (!current || current.parentNode.disabled) {
      if (first) first.selected = true;
    }
    showName(form);
  }

  function showName(form) {
    var b = bar(form);
    if (!b.name) return;
    b.name.hidden = !(b.action.value === "add_to_segment" && b.value.value === "new");
  }

  function countPicked(form) {
    var b = bar(form);
    if (!b.count) return;
    var n = 0;
    b.picks.forEach(function (box) { if (box.checked) n += 1; });
    var template = form.getAttribute("data-count-text") || "";
    b.count.textContent = b.all && b.all.checked ? "" : (n ? template.replace("%s", n) : "");
  }

  function init(root) {
    (root || document).querySelectorAll("form#bulk-form").forEach(function (form) {
      showValues(form);
      countPicked(form);
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.closest && target.closest("form#bulk-form");
    if (!form) return;
    if (target.matches("[data-testid=bulk-action]")) showValues(form);
    if (target.matches("[data-testid=bulk-value]")) showName(form);
    if (target.matches("[data-bulk-page]")) {
      bar(form).picks.forEach(function (box) { box.checked = target.checked; });
    }
    countPicked(form);
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.target); });
})();
