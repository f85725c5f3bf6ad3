// The analytics dashboard's charts. Data and translated labels come from json_script blocks
// (no inline script, so a strict Content-Security-Policy holds).
(function () {
  "use strict";
  const read = (id) => JSON.parse(document.getElementById(id).textContent);
  const classes = read("data-classes"), pareto = read("data-pareto"), rfm = read("data-rfm");
  const cohorts = read("data-cohorts"), sales = read("data-sales"), forecast = read("data-forecast");
  const t = read("data-labels");
  const pct = (v) => v === null ? 0 : Math.round(v * 1000) / 10;
  // Months and shares as the reader writes them ("дек. 2025", "16,7"), not as the data keeps them.
  const lang = document.documentElement.lang || "ru";
  Chart.defaults.locale = lang;
  const monthFormat = new Intl.DateTimeFormat(lang, {month: "short", year: "numeric", timeZone: "UTC"});
  const monthName = (iso) => monthFormat.format(new Date(iso.slice(0, 7) + "-01T00:00:00Z"));
  const number = (v) => v.toLocaleString(lang);
  const cell = (tag, text) => { const el = document.createElement(tag); el.textContent = text; return el; };

  const classChart = new Chart(document.getElementById("chart-classes"), {
    type: "bar",
    data: {
      labels: classes.map((c) => c.value_class),
      datasets: [
        {label: t.share_customers, data: classes.map((c) => pct(c.customer_share))},
        {label: t.share_revenue, data: classes.map((c) => pct(c.revenue_share))},
      ],
    },
    options: {
      onClick: (event, elements) => {
        if (elements.length) {
          window.location = "/customers/?value_class=" + encodeURIComponent(classes[elements[0].index].value_class);
        }
      },
    },
  });

  new Chart(document.getElementById("chart-pareto"), {
    type: "line",
    data: {
      datasets: [{label: t.share_revenue, data: [{x: 0, y: 0}].concat(pareto.map((p) => ({x: pct(p.customer_share), y: pct(p.revenue_share)}))), fill: false}],
    },
    options: {scales: {x: {type: "linear", min: 0, max: 100, title: {display: true, text: t.share_customers}}, y: {min: 0, max: 100}}},
  });

  // The RFM grid, built with DOM nodes (segment names never pass through innerHTML).
  const grid = document.getElementById("rfm-grid");
  const cells = {};
  rfm.forEach((c) => { cells[c.r + "-" + c.f] = c; });
  const head = document.createElement("thead"), headRow = document.createElement("tr");
  headRow.appendChild(cell("th", "R \\ F"));
  [1, 2, 3, 4, 5].forEach((f) => headRow.appendChild(cell("th", String(f))));
  head.appendChild(headRow);
  const body = document.createElement("tbody");
  const biggest = Math.max(1, ...rfm.map((c) => c.customers));
  for (let r = 5; r >= 1; r--) {
    const row = document.createElement("tr");
    row.appendChild(cell("th", String(r)));
    for (let f = 1; f <= 5; f++) {
      const c = cells[r + "-" + f], td = document.createElement("td");
      if (c) {
        td.style.background = "rgba(13,110,253," + (0.1 + 0.8 * c.customers / biggest).toFixed(2) + ")";
        const link = cell("a", String(c.customers));
        link.className = "link-dark";
        link.title = t.segments[c.segment] || c.segment;
        link.href = "/customers/?rfm_segment=" + encodeURIComponent(c.segment);
        td.appendChild(link);
      }
      row.appendChild(td);
    }
    body.appendChild(row);
  }
  grid.replaceChildren(head, body);

  const table = document.getElementById("cohort-table");
  const width = Math.max(0, ...cohorts.map((c) => c.shares.length));
  const cHead = document.createElement("thead"), cHeadRow = document.createElement("tr");
  cHeadRow.appendChild(cell("th", t.cohort));
  cHeadRow.appendChild(cell("th", t.customers));
  for (let i = 0; i < width; i++) cHeadRow.appendChild(cell("th", String(i)));
  cHead.appendChild(cHeadRow);
  const cBody = document.createElement("tbody");
  cohorts.forEach((c) => {
    const row = document.createElement("tr");
    const name = cell("th", monthName(c.cohort));
    name.dataset.month = c.cohort.slice(0, 7);
    row.appendChild(name);
    row.appendChild(cell("td", String(c.size)));
    for (let i = 0; i < width; i++) {
      const v = c.shares[i], td = cell("td", v === undefined ? "" : number(pct(v)));
      if (v !== undefined) td.style.background = "rgba(25,135,84," + Math.min(1, v).toFixed(2) + ")";
      row.appendChild(td);
    }
    cBody.appendChild(row);
  });
  table.replaceChildren(cHead, cBody);

  // Complete months as a line; the current month so far as a lone, labelled point (it is
  // left out of the forecast's fit); the forecast with its interval as a band.
  const months = sales.map((s) => s.month.slice(0, 7));
  forecast.forEach((f) => { const m = f.month.slice(0, 7); if (!months.includes(m)) months.push(m); });
  const at = (month) => months.indexOf(month.slice(0, 7));
  const series = (rows, value) => {
    const out = Array(months.length).fill(null);
    rows.forEach((row) => { out[at(row.month)] = value(row); });
    return out;
  };
  const complete = sales.filter((s) => !s.partial), partial = sales.filter((s) => s.partial);
  new Chart(document.getElementById("chart-sales"), {
    type: "line",
    data: {
      labels: months.map(monthName),
      datasets: [
        {label: t.revenue, data: series(complete, (s) => Number(s.revenue)), borderColor: "#0d6efd", backgroundColor: "#0d6efd"},
        {label: t.partial, data: series(partial, (s) => Number(s.revenue)), showLine: false, pointStyle: "rectRot", pointRadius: 7, borderColor: "#6c757d", backgroundColor: "#ffffff"},
        {label: t.forecast, data: series(forecast, (f) => f.forecast), borderDash: [6, 4], borderColor: "#fd7e14", backgroundColor: "#fd7e14"},
        {label: t.forecast_low, data: series(forecast, (f) => f.low), pointRadius: 0, borderWidth: 0, borderColor: "#adb5bd"},
        {label: t.forecast_high, data: series(forecast, (f) => f.high), pointRadius: 0, borderWidth: 0, fill: "-1", borderColor: "#adb5bd", backgroundColor: "rgba(108,117,125,0.2)"},
      ],
    },
  });
  document.body.dataset.chartsReady = "1";

  // A recompute in progress: its state in the reader's language, and the page (with every
  // chart) reloaded when it ends.
  const status = document.getElementById("recompute-status");
  if (status && /running|queued/.test(status.dataset.state)) {
    const poll = () => fetch(status.dataset.url, {credentials: "same-origin"}).then((r) => r.json()).then((run) => {
      status.textContent = run.label;
      status.dataset.state = run.status;
      if (run.status === "queued" || run.status === "running") {
        setTimeout(poll, 2000);
      } else if (run.status === "done") {
        window.location.reload();
      }
    });
    setTimeout(poll, 2000);
  }
  window.clienteleCharts = {classChart: classChart};
})();
