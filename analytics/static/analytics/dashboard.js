// The analytics dashboard's charts and tables, drawn from the json_script blocks of the page.
// A static file, not an inline script, so the Content-Security-Policy allows no inline code.
(function () {
  const read = (id) => JSON.parse(document.getElementById(id).textContent);
  const t = read("dashboard-i18n");
  const classes = read("data-classes"), pareto = read("data-pareto"), rfm = read("data-rfm");
  const cohorts = read("data-cohorts"), sales = read("data-sales"), forecast = read("data-forecast");
  const pct = (v) => v === null ? 0 : Math.round(v * 1000) / 10;

  const classChart = new Chart(document.getElementById("chart-classes"), {
    type: "bar",
    data: {
      labels: classes.map((c) => c.value_class),
      datasets: [
        {label: t.shareCustomers, data: classes.map((c) => pct(c.customer_share))},
        {label: t.shareRevenue, data: classes.map((c) => pct(c.revenue_share))},
      ],
    },
    options: {
      onClick: (event, elements) => {
        if (elements.length) {
          window.location = "/customers/?value_class=" + classes[elements[0].index].value_class;
        }
      },
    },
  });

  new Chart(document.getElementById("chart-pareto"), {
    type: "line",
    data: {
      datasets: [{label: t.shareRevenue, data: [{x: 0, y: 0}].concat(pareto.map((p) => ({x: pct(p.customer_share), y: pct(p.revenue_share)}))), fill: false}],
    },
    options: {scales: {x: {type: "linear", min: 0, max: 100, title: {display: true, text: t.shareCustomers}}, y: {min: 0, max: 100}}},
  });

  const grid = document.getElementById("rfm-grid");
  const cells = {};
  rfm.forEach((c) => { cells[c.r + "-" + c.f] = c; });
  let html = "<thead><tr><th>R \\ F</th>" + [1, 2, 3, 4, 5].map((f) => "<th>" + f + "</th>").join("") + "</tr></thead><tbody>";
  const biggest = Math.max(1, ...rfm.map((c) => c.customers));
  for (let r = 5; r >= 1; r--) {
    html += "<tr><th>" + r + "</th>";
    for (let f = 1; f <= 5; f++) {
      const c = cells[r + "-" + f];
      if (c) {
        const alpha = (0.1 + 0.8 * c.customers / biggest).toFixed(2);
        html += '<td style="background: rgba(13,110,253,' + alpha + ')"><a class="link-dark" title="' + c.segment + '" href="/customers/?rfm_segment=' + c.segment + '">' + c.customers + "</a></td>";
      } else {
        html += "<td></td>";
      }
    }
    html += "</tr>";
  }
  grid.innerHTML = html + "</tbody>";

  const table = document.getElementById("cohort-table");
  const width = Math.max(0, ...cohorts.map((c) => c.shares.length));
  let rows = "<thead><tr><th>" + t.cohort + "</th><th>" + t.customers + "</th>";
  for (let i = 0; i < width; i++) rows += "<th>" + i + "</th>";
  rows += "</tr></thead><tbody>";
  cohorts.forEach((c) => {
    rows += "<tr><th>" + c.cohort.slice(0, 7) + "</th><td>" + c.size + "</td>";
    for (let i = 0; i < width; i++) {
      const v = c.shares[i];
      rows += v === undefined ? "<td></td>" : '<td style="background: rgba(25,135,84,' + Math.min(1, v).toFixed(2) + ')">' + pct(v) + "</td>";
    }
    rows += "</tr>";
  });
  table.innerHTML = rows + "</tbody>";

  const labels = sales.map((s) => s.month.slice(0, 7)).concat(forecast.map((f) => f.month.slice(0, 7)));
  const pad = (n) => Array(n).fill(null);
  new Chart(document.getElementById("chart-sales"), {
    type: "line",
    data: {
      labels: labels,
      datasets: [
        {label: t.revenue, data: sales.map((s) => Number(s.revenue)).concat(pad(forecast.length)), borderColor: "#0d6efd", backgroundColor: "#0d6efd"},
        {label: t.forecast, data: pad(sales.length).concat(forecast.map((f) => f.forecast)), borderDash: [6, 4], borderColor: "#fd7e14", backgroundColor: "#fd7e14"},
        {label: t.forecastLow, data: pad(sales.length).concat(forecast.map((f) => f.low)), pointRadius: 0, borderWidth: 0, borderColor: "#adb5bd"},
        {label: t.forecastHigh, data: pad(sales.length).concat(forecast.map((f) => f.high)), pointRadius: 0, borderWidth: 0, fill: "-1", borderColor: "#adb5bd", backgroundColor: "rgba(108,117,125,0.2)"},
      ],
    },
  });
  document.body.dataset.chartsReady = "1";

  const status = document.getElementById("recompute-status");
  if (status && /running|queued/.test(status.dataset.state)) {
    const poll = () => fetch(status.dataset.url).then((r) => r.json()).then((run) => {
      status.textContent = run.status + " " + run.progress + "% " + run.step;
      if (run.status === "queued" || run.status === "running") setTimeout(poll, 2000);
    });
    setTimeout(poll, 2000);
  }
  window.clienteleCharts = {classChart: classChart};
})();
