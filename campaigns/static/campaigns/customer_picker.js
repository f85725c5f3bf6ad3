// The customer picker of the campaign page: a click on a search result puts the customer's id
// into every form that previews or test-sends for a customer, and shows whom was picked.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    const button = event.target.closest('[data-role="pick"]');
    if (!button) return;
    const box = button.closest("[data-picker]") || document;
    document.querySelectorAll('[data-role="picked-customer"]').forEach(function (input) {
      input.value = button.dataset.customer;
    });
    const label = box.querySelector('[data-role="picked-label"]');
    if (label) label.textContent = button.dataset.label;
    const results = button.closest('[data-testid="picker-results"]');
    if (results) results.remove();
  });
  // The test form is replaced after each send: keep the picked customer in it.
  document.body.addEventListener("htmx:afterSwap", function () {
    const picked = document.querySelector('[data-role="picked-customer"][value]:not([value=""])');
    if (!picked) return;
    document.querySelectorAll('[data-role="picked-customer"]').forEach(function (input) {
      if (!input.value) input.value = picked.value;
    });
  });
})();
