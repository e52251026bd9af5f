/* Draws the charts of an observatory run page from the JSON in #report-data with uPlot.
 * No network access: everything the page needs is in this directory. */
(function () {
  "use strict";

  var HEIGHT = 260;
  var BAND_FILL = {
    warmup: "rgba(120,120,120,0.12)",
    fault: "rgba(214,39,40,0.13)",
    disturbed: "rgba(255,127,14,0.16)",
  };
  var MARK_STROKE = "#d62728";
  // Tick spacing of the time axis in seconds: whole minutes and hours read best.
  var TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
    21600, 43200, 86400, 172800];

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // Seconds since the run started, as "1h05" or "4m30".
  function formatOffset(seconds) {
    if (seconds == null) return "";
    var s = Math.max(0, Math.round(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    return h > 0 ? h + "h" + pad(m) : m + "m" + pad(s % 60);
  }

  function formatValue(value, unit) {
    if (value == null) return "–";
    var abs = Math.abs(value);
    var text = abs >= 100 ? value.toFixed(0) : abs >= 10 ? value.toFixed(1) : value.toPrecision(3);
    return text + " " + unit;
  }

  function drawBands(u, bands) {
    var ctx = u.ctx;
    var left = u.bbox.left;
    var right = left + u.bbox.width;
    ctx.save();
    bands.forEach(function (band) {
      var x0 = Math.max(left, u.valToPos(band.start, "x", true));
      var x1 = Math.min(right, u.valToPos(band.end, "x", true));
      if (x1 <= x0) return;
      ctx.fillStyle = BAND_FILL[band.kind] || BAND_FILL.fault;
      ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
    });
    ctx.restore();
  }

  function drawMarks(u, marks) {
    var ctx = u.ctx;
    var ratio = window.devicePixelRatio || 1;
    ctx.save();
    ctx.strokeStyle = MARK_STROKE;
    ctx.fillStyle = MARK_STROKE;
    ctx.lineWidth = 1.5 * ratio;
    ctx.setLineDash([4 * ratio, 3 * ratio]);
    ctx.font = 11 * ratio + "px sans-serif";
    marks.forEach(function (mark, i) {
      var x = u.valToPos(mark.at, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.fillText("▲ " + (i + 1), x + 3 * ratio, u.bbox.top + 12 * ratio * (1 + (i % 3)));
    });
    ctx.restore();
  }

  // Time charts: x is seconds since the run started. Release charts: x indexes spec.labels.
  function formatX(spec) {
    if (!spec.labels) return formatOffset;
    return function (v) {
      return v != null && Math.round(v) === v && spec.labels[v] != null ? spec.labels[v] : "";
    };
  }

  function options(spec, width) {
    var fx = formatX(spec);
    var series = [{ label: spec.labels ? "release" : "t", value: function (u, v) { return fx(v); } }];
    spec.lines.forEach(function (line) {
      series.push({
        label: line.label,
        stroke: line.color,
        width: line.baseline ? 1.25 : 1.5,
        dash: line.dash ? [6, 4] : undefined,
        spanGaps: true,
        points: { show: !!spec.labels },
        value: function (u, v) { return formatValue(v, spec.unit); }
      });
    });
    var xAxis = { values: function (u, ticks) { return ticks.map(fx); } };
    if (spec.labels) xAxis.splits = function () { return spec.x; };
    else xAxis.incrs = TIME_INCRS;
    return {
      width: width,
      height: HEIGHT,
      scales: spec.labels
        ? { x: { time: false, range: [-0.5, Math.max(0.5, spec.x.length - 0.5)] } }
        : { x: { time: false } },
      series: series,
      cursor: { sync: { key: "observatory" } },
      axes: [xAxis, { label: spec.unit, size: 60 }],
      hooks: {
        drawClear: [function (u) { drawBands(u, spec.bands); }],
        draw: [function (u) { drawMarks(u, spec.marks); }]
      }
    };
  }

  function countPoints(data) {
    var n = 0;
    for (var i = 1; i < data.length; i++) {
      for (var j = 0; j < data[i].length; j++) if (data[i][j] != null) n++;
    }
    return n;
  }

  function describeMarks(figure, spec) {
    if (!spec.marks.length) return;
    var list = document.createElement("ol");
    list.className = "marks";
    spec.marks.forEach(function (mark) {
      var item = document.createElement("li");
      item.textContent = mark.label; // textContent: labels are data, never markup
      list.appendChild(item);
    });
    figure.appendChild(list);
  }

  function draw(figure, spec, registry) {
    var target = figure.querySelector(".chart-canvas");
    var data = [spec.x].concat(spec.lines.map(function (line) { return line.values; }));
    var width = Math.max(320, target.clientWidth || figure.clientWidth || 600);
    var plot = new uPlot(options(spec, width), data, target);
    describeMarks(figure, spec);
    registry.push({ id: spec.id, plot: plot, points: countPoints(data), series: spec.lines.length });
    return plot;
  }

  function main() {
    var registry = [];
    window.observatoryCharts = registry;
    var node = document.getElementById("report-data");
    if (!node) return;
    var specs = JSON.parse(node.textContent).charts;
    var byId = {};
    specs.forEach(function (spec) { byId[spec.id] = spec; });
    var figures = document.querySelectorAll("figure[data-chart]");
    Array.prototype.forEach.call(figures, function (figure) {
      var spec = byId[figure.getAttribute("data-chart")];
      if (spec) draw(figure, spec, registry);
    });
    window.addEventListener("resize", function () {
      registry.forEach(function (entry) {
        var box = entry.plot.root.parentNode;
        entry.plot.setSize({ width: Math.max(320, box.clientWidth), height: HEIGHT });
      });
    });
    document.documentElement.setAttribute("data-charts-ready", String(registry.length));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", main);
  } else {
    main();
  }
})();
