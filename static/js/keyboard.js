// Keyboard-first search, on every page:
//  "/" focuses the search box (or opens the customer list with it focused where a page has none);
//  in the search box, Enter opens the only match, and the down arrow moves into the results;
//  in the results, the up and down arrows move from row to row (up from the first row returns
//  to the search box).
(function () {
  "use strict";
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  function searchBox() {
    return document.getElementById("search") || document.querySelector('[data-testid="today-search"]');
  }
  function resultLinks() {
    return Array.from(document.querySelectorAll('[data-testid="customer-row"] a[href^="/customers/"]'));
  }
  // The search box runs its own search as you type; its "change" (fired when focus leaves it,
  // e.g. on the down arrow) must not reach the filter form and redraw the results under focus.
  const listSearch = document.getElementById("search");
  if (listSearch) listSearch.addEventListener("change", function (event) { event.stopPropagation(); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && !typing(document.activeElement) && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      const box = searchBox();
      if (box) { box.focus(); box.select(); } else { window.location.href = "/customers/"; }
      return;
    }
    const active = document.activeElement;
    const links = resultLinks();
    if (active && active.id === "search") {
      if (event.key === "ArrowDown" && links.length) { event.preventDefault(); links[0].focus(); }
      if (event.key === "Enter" && links.length === 1) { event.preventDefault(); window.location.href = links[0].href; }
      return;
    }
    const index = links.indexOf(active);
    if (index === -1) return;
    if (event.key === "ArrowDown" && index + 1 < links.length) { event.preventDefault(); links[index + 1].focus(); }
    if (event.key === "ArrowUp") {
      event.preventDefault();
      if (index > 0) links[index - 1].focus(); else { const box = searchBox(); if (box) box.focus(); }
    }
  });
})();
