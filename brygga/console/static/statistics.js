// Draws the statistics page's charts from the JSON the server put in #stats-data (no inline script).
(function () {
  var el = document.getElementById("stats-data");
  if (!el || typeof Chart === "undefined") return;
  var data = JSON.parse(el.textContent);
  var palette = ["#0b5cad", "#b42318", "#1a7f37", "#9a6700", "#6639ba", "#0e7490", "#be185d", "#4d5d6c",
                 "#c2410c", "#15803d", "#7c3aed", "#a16207"];
  function sets(series, opts) {
    return series.map(function (s, i) {
      return Object.assign({label: s.label, data: s.values, borderColor: palette[i % palette.length],
                            backgroundColor: palette[i % palette.length]}, opts || {});
    });
  }
  var common = {responsive: true, animation: false, interaction: {mode: "index", intersect: false},
                scales: {y: {beginAtZero: true, ticks: {precision: 0}}}};
  new Chart(document.getElementById("chart-backlog"),
            {type: "line", data: {labels: data.days, datasets: sets(data.backlog, {tension: 0.2, pointRadius: 1})},
             options: common});
  new Chart(document.getElementById("chart-flow"),
            {type: "bar", data: {labels: data.days, datasets: sets(data.flow)},
             options: Object.assign({}, common, {scales: {x: {stacked: false}, y: {beginAtZero: true, ticks: {precision: 0}}}})});
  document.body.setAttribute("data-charts", "drawn");
})();
