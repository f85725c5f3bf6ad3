// The backtest chart (Fader's: predicted vs actual purchase days per customer in the holdout
// weeks, by repeat purchase days in calibration). Data from json_script, labels from the
// canvas's data attributes: no inline script.
(function () {
  "use strict";
  const canvas = document.getElementById("chart-backtest");
  const source = document.getElementById("data-backtest");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const groups = JSON.parse(source.textContent) || [];
  if (!groups.length) return;
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: groups.map((g) => g.label),
      datasets: [
        {label: canvas.dataset.labelActual, data: groups.map((g) => g.actual), backgroundColor: "#0d6efd"},
        {label: canvas.dataset.labelPredicted, data: groups.map((g) => g.predicted), backgroundColor: "#fd7e14"},
      ],
    },
    options: {scales: {x: {title: {display: true, text: canvas.dataset.labelX}}}},
  });
  canvas.dataset.drawn = "1";
})();
