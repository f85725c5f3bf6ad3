// Export buttons are POST forms (CSRF-protected). Before one submits, copy the filter form's
// current values into it, since htmx changes the list without reloading the page.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches || !form.matches("form[data-export-form]")) return;
  var filters = document.getElementById("filters");
  if (!filters) return;
  form.querySelectorAll("input[data-filter-copy]").forEach(function (input) { input.remove(); });
  new FormData(filters).forEach(function (value, name) {
    if (name === "after" || name === "before" || typeof value !== "string") return;
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    input.setAttribute("data-filter-copy", "");
    form.appendChild(input);
  });
});
