// The campaign form: shows only the fields of the chosen kind and channel, and renders the
// email body beside its editor (in a sandboxed frame: no scripts, no access to this page).
(function () {
  "use strict";
  const form = document.getElementById("campaign-form");
  if (!form) return;
  const kind = form.querySelector('[name="kind"]');
  const channel = form.querySelector('[name="channel"]');

  function matches(box, attr, value) {
    const wanted = box.getAttribute(attr);
    return !wanted || wanted.split(" ").indexOf(value) !== -1;
  }

  function update() {
    form.querySelectorAll("[data-show-for-kinds], [data-show-for-channels]").forEach(function (box) {
      const shown = matches(box, "data-show-for-kinds", kind ? kind.value : "") &&
        matches(box, "data-show-for-channels", channel ? channel.value : "");
      box.hidden = !shown;
    });
  }

  const editor = form.querySelector('[data-role="html-editor"]');
  const preview = form.querySelector('[data-role="html-preview"]');
  function renderPreview() {
    if (editor && preview) preview.srcdoc = editor.value;
  }

  if (kind) kind.addEventListener("change", update);
  if (channel) channel.addEventListener("change", update);
  if (editor) editor.addEventListener("input", renderPreview);
  update();
  renderPreview();
})();
