// Buttons that ask before they act: <button data-confirm="Question?">. A static file, because the
// Content-Security-Policy runs no inline handlers.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();
