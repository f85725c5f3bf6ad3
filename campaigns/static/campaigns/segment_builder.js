// The segment builder: edits the rule tree in #id_rules as nested groups of conditions and
// fires "rules-changed" so htmx refreshes the live count. The server validates everything.
(function () {
  "use strict";
  const input = document.getElementById("id_rules");
  const root = document.getElementById("builder");
  if (!input || !root) return;
  const schema = JSON.parse(document.getElementById("segment-schema").textContent);
  const t = JSON.parse(document.getElementById("segment-i18n").textContent);
  let tree;
  try { tree = JSON.parse(input.value || "{}"); } catch (e) { tree = {}; }
  if (!tree || !tree.rules) tree = { op: "and", rules: tree && tree.field ? [tree] : [] };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }

  function changed() {
    input.value = JSON.stringify(tree);
    document.body.dispatchEvent(new CustomEvent("rules-changed"));
  }

  function defaultValue(kind, spec) {
    if (kind === "choices") return spec.choices.length ? [spec.choices[0][0]] : [];
    if (kind === "ids") return spec.options.length ? [spec.options[0][0]] : [];
    if (kind === "int") return 1;
    if (kind === "number") return "0";
    if (kind === "date") return new Date().toISOString().slice(0, 10);
    if (kind === "channel" || kind === "holiday") return spec.options.length ? spec.options[0][0] : "";
    if (kind === "none") return null;
    return "";
  }

  function newCondition(field) {
    const spec = schema[field];
    const op = Object.keys(spec.ops)[0];
    const cond = { field: field, op: op, value: defaultValue(spec.ops[op], spec) };
    Object.entries(spec.extra).forEach(([name, kind]) => { cond[name] = kind === "key" ? "" : 30; });
    return cond;
  }

  function valueInput(cond) {
    const spec = schema[cond.field];
    const kind = spec.ops[cond.op];
    if (kind === "none") return el("span");
    if (kind === "choices" || (kind === "ids" && spec.options.length)) {
      const select = el("select", { class: "form-select form-select-sm w-auto", multiple: "multiple", "data-role": "value" });
      const options = kind === "choices" ? spec.choices : spec.options;
      options.forEach(([v, label]) => {
        const o = el("option", { value: v, text: label });
        if ((cond.value || []).map(String).includes(String(v))) o.selected = true;
        select.appendChild(o);
      });
      select.addEventListener("change", () => {
        const picked = Array.from(select.selectedOptions).map((o) => o.value);
        cond.value = kind === "ids" ? picked.map(Number) : picked;
        changed();
      });
      return select;
    }
    if (kind === "channel" || kind === "holiday") {
      // One value picked from a list: a channel, or a holiday of the calendar by its name.
      const select = el("select", { class: "form-select form-select-sm w-auto", "data-role": "value" });
      spec.options.forEach(([v, label]) => {
        const o = el("option", { value: v, text: label }); if (cond.value === v) o.selected = true; select.appendChild(o);
      });
      select.addEventListener("change", () => { cond.value = select.value; changed(); });
      return select;
    }
    const type = kind === "date" ? "date" : (kind === "int" ? "number" : "text");
    const shown = Array.isArray(cond.value) ? cond.value.join(",") : (cond.value ?? "");
    const box = el("input", { class: "form-control form-control-sm", type: type, value: shown, "data-role": "value", style: "max-width: 12rem" });
    box.addEventListener("input", () => {
      const raw = box.value;
      if (kind === "int") cond.value = parseInt(raw, 10);
      else if (kind === "ids") cond.value = raw.split(",").map((s) => parseInt(s, 10)).filter((n) => !isNaN(n));
      else if (kind === "json") cond.value = raw !== "" && !isNaN(Number(raw)) ? Number(raw) : raw;
      else cond.value = raw;
      changed();
    });
    return box;
  }

  function conditionRow(cond, parent) {
    const row = el("div", { class: "d-flex flex-wrap gap-2 align-items-center mb-2", "data-role": "condition" });
    // Sized to the longest field name, so no name is cut off.
    const fieldSelect = el("select", { class: "form-select form-select-sm w-auto", "data-role": "field" });
    const groups = {};
    Object.entries(schema).forEach(([name, spec]) => {
      if (!groups[spec.group]) { groups[spec.group] = el("optgroup", { label: spec.group }); fieldSelect.appendChild(groups[spec.group]); }
      const o = el("option", { value: name, text: spec.label }); if (name === cond.field) o.selected = true;
      groups[spec.group].appendChild(o);
    });
    fieldSelect.addEventListener("change", () => {
      const fresh = newCondition(fieldSelect.value);
      Object.keys(cond).forEach((k) => delete cond[k]); Object.assign(cond, fresh);
      render(); changed();
    });
    const opSelect = el("select", { class: "form-select form-select-sm w-auto", "data-role": "op" });
    Object.keys(schema[cond.field].ops).forEach((op) => {
      const o = el("option", { value: op, text: schema[cond.field].op_labels[op] }); if (op === cond.op) o.selected = true; opSelect.appendChild(o);
    });
    opSelect.addEventListener("change", () => {
      cond.op = opSelect.value; cond.value = defaultValue(schema[cond.field].ops[cond.op], schema[cond.field]);
      render(); changed();
    });
    row.append(fieldSelect, opSelect, valueInput(cond));
    Object.entries(schema[cond.field].extra).forEach(([name, kind]) => {
      const box = el("input", { class: "form-control form-control-sm", type: kind === "key" ? "text" : "number", value: cond[name] ?? "", placeholder: t[name] || name, "data-role": name, style: "max-width: 8rem" });
      box.addEventListener("input", () => { cond[name] = kind === "key" ? box.value : parseInt(box.value, 10); changed(); });
      row.append(el("span", { class: "small text-secondary", text: t[name] || name }), box);
    });
    const remove = el("button", { type: "button", class: "btn btn-sm btn-outline-danger", text: "×", title: t.remove });
    remove.addEventListener("click", () => { parent.rules.splice(parent.rules.indexOf(cond), 1); render(); changed(); });
    row.append(remove);
    return row;
  }

  function groupBox(group, parent) {
    const box = el("div", { class: "border rounded p-2 mb-2", "data-role": "group" });
    const head = el("div", { class: "d-flex gap-2 align-items-center mb-2" });
    const op = el("select", { class: "form-select form-select-sm", "data-role": "group-op", style: "max-width: 14rem" });
    ["and", "or", "not"].forEach((o) => { const opt = el("option", { value: o, text: t[o] }); if (o === group.op) opt.selected = true; op.appendChild(opt); });
    op.addEventListener("change", () => { group.op = op.value; changed(); });
    const addCond = el("button", { type: "button", class: "btn btn-sm btn-outline-primary", text: t.addCondition, "data-role": "add-condition" });
    addCond.addEventListener("click", () => { group.rules.push(newCondition("gender")); render(); changed(); });
    const addGroup = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", text: t.addGroup, "data-role": "add-group" });
    addGroup.addEventListener("click", () => { group.rules.push({ op: "or", rules: [] }); render(); changed(); });
    head.append(op, addCond, addGroup);
    if (parent) {
      const remove = el("button", { type: "button", class: "btn btn-sm btn-outline-danger ms-auto", text: t.remove });
      remove.addEventListener("click", () => { parent.rules.splice(parent.rules.indexOf(group), 1); render(); changed(); });
      head.append(remove);
    }
    box.append(head);
    const body = el("div", { class: "ps-3" });
    group.rules.forEach((child) => body.append(child.rules ? groupBox(child, group) : conditionRow(child, group)));
    box.append(body);
    return box;
  }

  function render() { root.replaceChildren(groupBox(tree, null)); }
  render();
  input.value = JSON.stringify(tree);
})();
