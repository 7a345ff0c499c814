/* Shipyard web UI: progressive enhancement only. Every page reads without this file.
 *
 * - A chart (<figure data-chart>) holds an inline SVG drawn by the server and its points in a
 *   <script type="application/json" class="chart-data"> data island. With uPlot loaded, the SVG is
 *   replaced by a uPlot chart of the same points: drag to zoom, double-click to reset, the legend
 *   reads the values under the cursor.
 * - A <select data-autosubmit> submits its form when changed (the form's button stays for no-JS).
 *
 * No inline script and no eval (the pages' Content-Security-Policy allows neither); content that
 * htmx swaps in later is enhanced too ("htmx:load").
 */
(function () {
  "use strict";

  var HEIGHT = 220;

  function seriesOptions(s) {
    var options = { label: s.label, stroke: s.color, width: 1.5, spanGaps: true };
    if (s.dash && s.dash.length) options.dash = s.dash;
    if (s.x.length === 1) options.points = { show: true, size: 6 };
    return options;
  }

  function enhanceChart(figure) {
    if (typeof uPlot === "undefined" || figure.classList.contains("enhanced")) return;
    var island = figure.querySelector("script.chart-data");
    if (!island) return;
    var spec;
    try {
      spec = JSON.parse(island.textContent);
    } catch (e) {
      return; // the SVG stays
    }
    if (!spec.series || !spec.series.length) return;
    var tables = spec.series.map(function (s) { return [s.x, s.y]; });
    // one x array for all series: the union of their steps (a series lacking a step has null there)
    var data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    var holder = document.createElement("div");
    holder.className = "uplot-holder";
    figure.insertBefore(holder, figure.querySelector("svg"));
    var width = Math.max(holder.clientWidth || figure.clientWidth, 240);
    var plot = new uPlot({
      width: width,
      height: HEIGHT,
      scales: { x: { time: false } },
      cursor: { drag: { x: true, y: false } },
      series: [{ label: "step" }].concat(spec.series.map(seriesOptions)),
      axes: [{ label: "step" }, {}],
    }, data, holder);
    figure.classList.add("enhanced"); // shipyard.css hides the SVG, its legend and axis labels
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () {
        var w = Math.max(holder.clientWidth, 240);
        if (w !== plot.width) plot.setSize({ width: w, height: HEIGHT });
      }).observe(holder);
    }
  }

  function autosubmit(select) {
    if (select.dataset.enhanced) return;
    select.dataset.enhanced = "1";
    select.addEventListener("change", function () {
      if (select.form) select.form.requestSubmit();
    });
  }

  function enhance(root) {
    root.querySelectorAll("figure[data-chart]").forEach(enhanceChart);
    root.querySelectorAll("select[data-autosubmit]").forEach(autosubmit);
  }

  enhance(document); // deferred: the document is parsed, uPlot and htmx are loaded
  document.addEventListener("htmx:load", function (event) {
    if (event.target && event.target.querySelectorAll) enhance(event.target);
  });
})();
